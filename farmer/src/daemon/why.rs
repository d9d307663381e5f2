//! `acre-farmer why`: a farm's ledger turned into plain sentences saying what happened and what to do.
//!
//! Pure: it reads a summed [`Tally`] and writes sentences; the binary reads the ledgers and prints them.

use std::collections::BTreeMap;

use crate::daemon::ledger::{ClaimKind, Event, Tally};

/// Sums `tallies` into one.
pub fn sum(tallies: &[Tally]) -> Tally {
    let mut total = Tally::default();
    for tally in tallies {
        total.absorb(tally);
    }
    total
}

fn plural(count: u64, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

fn list_ms(values: &[u64]) -> String {
    let shown: Vec<String> = values.iter().take(5).map(|ms| format!("{ms} ms")).collect();
    let more = values.len().saturating_sub(shown.len());
    match (shown.as_slice(), more) {
        ([one], 0) => one.clone(),
        (many, 0) => {
            let (last, rest) = many
                .split_last()
                .map_or((String::new(), &[][..]), |(l, r)| (l.clone(), r));
            format!("{} and {last}", rest.join(", "))
        }
        (many, more) => format!("{} and {more} more", many.join(", ")),
    }
}

/// Explains `total` (the farm at `farm`, over the last `hours`) in sentences, the most important first.
pub fn explain(farm: &str, hours: u64, total: &Tally, unreadable_lines: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let skipped = total.skipped_busy + total.skipped_late + total.skipped_unreadable + total.skipped_disabled;
    if total.audited == 0 && skipped == 0 {
        lines.push(format!(
            "{farm}: nothing recorded in the last {}: was the farmer running with this farm?",
            plural(hours, "hour", "hours")
        ));
        return lines;
    }
    lines.push(format!(
        "{farm}, last {}: {} audited, {} found, {} and {} submitted ({} accepted), {} sealed.",
        plural(hours, "hour", "hours"),
        plural(total.audited, "slot", "slots"),
        plural(total.candidates, "winning chunk", "winning chunks"),
        plural(total.solutions, "block solution", "block solutions"),
        plural(total.votes, "vote", "votes"),
        total.accepted,
        plural(total.sealed, "block", "blocks"),
    ));
    let mut problems = 0;

    for event in &total.events {
        if let Event::Disabled { reason } = event {
            problems += 1;
            lines.push(format!(
                "The farm was disabled: {reason}. The other farms kept farming. Check the disk (`acre-farmer \
                 scrub --repair`), then restart the farmer."
            ));
        }
    }

    let damaged: Vec<String> = total
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Damaged { sector, offset, end } => Some(format!("sector {sector}, bytes {offset}..{end}")),
            _ => None,
        })
        .collect();
    if total.damaged > 0 {
        problems += 1;
        lines.push(format!(
            "{} found damaged on disk ({}) and plotted again; the rest of the farm kept farming. Damage that \
             comes back points at a failing disk: check its SMART status.",
            plural(total.damaged, "sector was", "sectors were"),
            damaged.join("; ")
        ));
    }

    let missed: Vec<_> = total
        .events
        .iter()
        .filter_map(|event| match event {
            Event::Missed {
                taken_ms,
                allowed_ms,
                audit_ms,
                prove_ms,
                plotting,
                plotting_threads,
                cores,
                ..
            } => Some((
                *taken_ms,
                *allowed_ms,
                *audit_ms,
                *prove_ms,
                *plotting,
                *plotting_threads,
                *cores,
            )),
            _ => None,
        })
        .collect();
    if total.missed > 0 {
        problems += 1;
        let taken: Vec<u64> = missed.iter().map(|m| m.0).collect();
        let allowed = missed.iter().map(|m| m.1).max().unwrap_or(0);
        let figures = if missed.is_empty() {
            String::new()
        } else {
            let took = if total.missed == 1 { "it took" } else { "they took" };
            format!(" ({took} {}; {allowed} ms were allowed)", list_ms(&taken))
        };
        let busy_cores = missed.iter().filter(|m| m.4 && m.5 >= m.6).count();
        // Auditing is nothing but reading the plot: if it alone took half the time allowed (or more
        // than proving), the disk is what is slow.
        let slow_audit = missed.iter().filter(|m| m.2 >= m.1 / 2 || m.2 >= m.3).count();
        let (cause, advice) = if busy_cores * 2 > missed.len() {
            let cores = missed.iter().map(|m| m.6).max().unwrap_or(1);
            (
                format!(
                    "because plotting used all {}",
                    plural(u64::from(cores), "core", "cores")
                ),
                format!(
                    "lower --plotting-threads (e.g. --plotting-threads {})",
                    cores.saturating_sub(1).max(1)
                ),
            )
        } else if slow_audit * 2 > missed.len() {
            let worst = missed.iter().map(|m| m.2).max().unwrap_or(0);
            (
                format!("because reading the plot was slow (auditing took up to {worst} ms)"),
                "the disk cannot keep up with the slot time: check it with `acre-farmer benchmark audit PATH`, \
                 or move the farm to a faster disk"
                    .to_owned(),
            )
        } else {
            let worst = missed.iter().map(|m| m.3).max().unwrap_or(0);
            (
                format!("because proving was slow (up to {worst} ms)"),
                "check the machine with `acre-farmer benchmark prove PATH`; fewer plotting threads leave \
                 proving more CPU"
                    .to_owned(),
            )
        };
        let what = plural(
            total.missed,
            "proof missed its deadline",
            "proofs missed their deadline",
        );
        lines.push(format!("{what}{figures} {cause}: {advice}."));
    }

    if total.rejected > 0 {
        problems += 1;
        let mut reasons: BTreeMap<(&str, &str), (u64, u64)> = BTreeMap::new();
        for event in &total.events {
            if let Event::Rejected { slot, kind, reason } = event {
                let kind = match kind {
                    ClaimKind::Block => "solution",
                    ClaimKind::Vote => "vote",
                };
                let entry = reasons.entry((kind, reason.as_str())).or_insert((0, *slot));
                entry.0 += 1;
            }
        }
        let detail: Vec<String> = reasons
            .iter()
            .take(5)
            .map(|((kind, reason), (count, slot))| {
                format!("{count} × {kind} (first at slot {slot}): \"{reason}\"")
            })
            .collect();
        lines.push(format!(
            "The node rejected {}: {}. The node's log has the details; a rejection that repeats means this farm \
             or the node is misconfigured (wrong chain or an outdated farmer).",
            plural(total.rejected, "submission", "submissions"),
            detail.join("; ")
        ));
    }

    if total.skipped_unreadable > 0 {
        problems += 1;
        let example = total.events.iter().find_map(|event| match event {
            Event::Unreadable { sector, error, .. } => Some(format!(" (e.g. sector {sector}: {error})")),
            _ => None,
        });
        lines.push(format!(
            "{} could not read the plot{}: the disk may be failing; run `acre-farmer scrub --repair {farm}`.",
            plural(total.skipped_unreadable, "audit", "audits"),
            example.unwrap_or_default()
        ));
    }

    if total.skipped_busy > 0 {
        problems += 1;
        lines.push(format!(
            "{} skipped because the previous slot's audit and proof were still running: this farmer is slower \
             than the slot time; `acre-farmer benchmark audit PATH` shows which farm is slow.",
            plural(total.skipped_busy, "slot was", "slots were")
        ));
    }
    if total.skipped_late > 0 {
        problems += 1;
        lines.push(format!(
            "{} announced after {} deadline had already passed: the node or the connection to it is slow.",
            plural(total.skipped_late, "slot was", "slots were"),
            if total.skipped_late == 1 { "its" } else { "their" }
        ));
    }
    if total.skipped_disabled > 0 {
        lines.push(format!(
            "{} not audited while the farm was disabled.",
            plural(total.skipped_disabled, "slot was", "slots were")
        ));
    }
    if total.events_dropped > 0 {
        lines.push(format!(
            "({} more events were counted but not kept.)",
            total.events_dropped
        ));
    }
    if unreadable_lines > 0 {
        lines.push(format!(
            "(Skipped {} of the ledger that could not be read.)",
            plural(unreadable_lines as u64, "line", "lines")
        ));
    }
    if problems == 0 {
        lines.push(if total.candidates == 0 {
            "Nothing went wrong: every slot was audited and no chunk was close enough to win, which is normal \
             for a small farm (wins are rare and random)."
                .to_owned()
        } else {
            "Nothing went wrong: every slot was audited and every proof was in time.".to_owned()
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::ledger::SkipReason;

    fn missed(plotting: bool, audit_ms: u64) -> Event {
        Event::Missed {
            slot: 3,
            taken_ms: 2100,
            allowed_ms: 1000,
            audit_ms,
            prove_ms: 300,
            plotting,
            plotting_threads: 2,
            cores: 2,
        }
    }

    #[test]
    fn missed_deadlines_name_their_figures_and_cause() {
        let mut tally = Tally {
            audited: 100,
            missed: 3,
            ..Tally::default()
        };
        for _ in 0..3 {
            tally.event(missed(true, 100));
        }
        let text = explain("/farm", 1, &tally, 0).join("\n");
        assert!(
            text.contains("3 proofs missed their deadline (they took 2100 ms, 2100 ms and 2100 ms; 1000 ms were allowed) because plotting used all 2 cores: lower --plotting-threads (e.g. --plotting-threads 1)"),
            "{text}"
        );
        let mut slow_disk = Tally {
            audited: 10,
            missed: 1,
            ..Tally::default()
        };
        slow_disk.event(missed(false, 1800));
        let text = explain("/farm", 1, &slow_disk, 0).join("\n");
        assert!(
            text.contains("1 proof missed its deadline (it took 2100 ms; 1000 ms were allowed) because reading the plot was slow (auditing took up to 1800 ms)"),
            "{text}"
        );
    }

    #[test]
    fn rejections_quote_the_node_and_a_quiet_farm_is_fine() {
        let mut tally = Tally {
            audited: 5,
            rejected: 2,
            ..Tally::default()
        };
        for slot in [7, 9] {
            tally.event(Event::Rejected {
                slot,
                kind: ClaimKind::Block,
                reason: "invalid solution: bad chunk".into(),
            });
        }
        let text = explain("/farm", 2, &tally, 1).join("\n");
        assert!(
            text.contains("The node rejected 2 submissions: 2 × solution (first at slot 7): \"invalid solution: bad chunk\""),
            "{text}"
        );
        assert!(
            text.contains("(Skipped 1 line of the ledger that could not be read.)"),
            "{text}"
        );
        let quiet = Tally {
            audited: 5,
            ..Tally::default()
        };
        assert!(explain("/farm", 1, &quiet, 0)[1].starts_with("Nothing went wrong"));
        assert!(explain("/farm", 1, &Tally::default(), 0)[0].contains("nothing recorded"));
        let mut busy = quiet;
        busy.skipped(SkipReason::Busy);
        assert!(explain("/farm", 1, &busy, 0)[1].starts_with("1 slot was skipped"));
    }
}
