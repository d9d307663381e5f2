//! The simulator's acceptance runs (issue 14): a hundred farmers over two thousand slots with a
//! partition, determinism by seed, and equivocating farmers.

use acre_sim::{Config, Report, run};

fn within(report: &Report, sigmas: f64) {
    // Slots with a block: a sum of per-slot Bernoulli trials with the predicted probabilities; their
    // variance is at most `n p (1 − p)` at the mean probability.
    let p = report.expected_blocks / report.slots as f64;
    let sigma = (report.slots as f64 * p * (1.0 - p)).sqrt();
    let observed = report.slots_with_blocks as f64;
    assert!(
        (observed - report.expected_blocks).abs() <= sigmas * sigma,
        "{observed} slots with blocks, expected {:.1} ± {sigma:.1}\n{}",
        report.expected_blocks,
        report.summary()
    );
}

#[test]
fn a_hundred_farmers_over_two_thousand_slots_with_a_partition_converge_and_are_paid_by_space() {
    let started = std::time::Instant::now();
    let report = run(&Config {
        farmers: 100,
        slots: 2_000,
        seed: 1,
        partition: Some(1_000..1_030),
        ..Config::default()
    })
    .expect("runs");
    eprintln!("{}\n(in {:.1?})", report.summary(), started.elapsed());
    assert_eq!(report.nodes_agreeing, 100, "every node ends on one best block");
    within(&report, 4.0);
    // Most blocks end on the best chain: forks come from latency and the partition only.
    assert!(report.fork_rate < 0.2, "{}", report.summary());
    assert!(
        report.votes_included > report.best_number * 5,
        "votes are included"
    );
    for class in &report.space_classes {
        assert!(
            (class.reward_share - class.space_share).abs() <= 0.25 * class.space_share,
            "rewards follow space: {class:?}"
        );
    }
    assert!(report.median_slots_to_finality.is_some(), "blocks become final");
    assert_eq!(
        report.refused_below_archiving_point, 0,
        "the partition healed within the confirmation depth"
    );
}

#[test]
fn one_seed_gives_one_hash_and_another_seed_another() {
    let config = |seed| Config {
        farmers: 12,
        slots: 200,
        seed,
        ..Config::default()
    };
    let first = run(&config(7)).expect("runs");
    let again = run(&config(7)).expect("runs");
    let other = run(&config(8)).expect("runs");
    assert_eq!(first, again, "the same seed gives the same run");
    assert_ne!(
        first.final_hash, other.final_hash,
        "another seed gives another run"
    );
}

#[test]
fn equivocating_farmers_are_refused_and_blocklisted() {
    let report = run(&Config {
        farmers: 40,
        slots: 600,
        seed: 3,
        byzantine: 0.1,
        ..Config::default()
    })
    .expect("runs");
    eprintln!("{}", report.summary());
    assert_eq!(report.equivocators, 4);
    assert!(report.equivocated > 0, "some equivocator won a slot");
    // No second seal was accepted anywhere; each equivocator's first one was refused by all 40 nodes
    // (its own included) as an equivocation, later ones (once block-listed) as invalid.
    assert_eq!(report.equivocations_accepted, 0);
    assert!(report.equivocations_refused >= 40 * report.equivocated as u64);
    assert_eq!(
        report.equivocators_blocklisted, report.equivocated,
        "every equivocator is block-listed"
    );
    assert_eq!(report.honest_blocklisted, 0);
    assert_eq!(report.nodes_agreeing, 40);
}

#[test]
fn oversized_configurations_are_refused_before_any_work() {
    let too_many = run(&Config {
        farmers: acre_sim::MAX_FARMERS + 1,
        ..Config::default()
    });
    assert!(matches!(too_many, Err(acre_sim::SimError::Config(_))));
    let no_slots = run(&Config {
        slots: 0,
        ..Config::default()
    });
    assert!(matches!(no_slots, Err(acre_sim::SimError::Config(_))));
}
