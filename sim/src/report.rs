//! What a run found, as numbers a researcher can compare with theory.

use serde::Serialize;

/// A space class: the farmers that plotted the same number of pieces.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpaceClass {
    /// Pieces each farmer of the class plotted.
    pub pieces: u16,
    /// Honest farmers in the class.
    pub farmers: usize,
    /// The class's share of the honest farmers' space.
    pub space_share: f64,
    /// The class's share of the honest farmers' rewards on the final best chain.
    pub reward_share: f64,
}

/// One slot's line of the CSV output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SlotRow {
    /// The slot.
    pub slot: u64,
    /// Node 0's best block number at the end of the slot.
    pub best_number: u64,
    /// Blocks authored so far (all branches).
    pub authored: u64,
    /// Node 0's finalized block number.
    pub finalized: u64,
    /// Slots with a block expected so far, from the farmers' plots (the sum of the per-slot
    /// probabilities behind [`Report::expected_blocks`]).
    pub expected: f64,
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Hex BLAKE3 over every node's best block and the best chain's state root: equal for equal seeds.
    pub final_hash: String,
    /// Farmers (each with its node).
    pub farmers: usize,
    /// Slots simulated.
    pub slots: u64,
    /// The seed.
    pub seed: u64,
    /// Number of the best block the most nodes agree on.
    pub best_number: u64,
    /// Nodes whose best block is that block at the end.
    pub nodes_agreeing: usize,
    /// Valid blocks authored on any branch.
    pub blocks_authored: u64,
    /// Slots in which at least one farmer's space wins a block, as the farmers' plots predict (per slot:
    /// `1 − Π_farmers mean_s-bucket (1 − q)^chunks`, `q = range / 2^64` at node 0's range then).
    pub expected_blocks: f64,
    /// Distinct slots with a valid block on any branch.
    pub slots_with_blocks: u64,
    /// Valid blocks not on the final best chain.
    pub orphaned: u64,
    /// `orphaned / blocks_authored`.
    pub fork_rate: f64,
    /// The longest run of blocks off the final best chain.
    pub max_fork_depth: u64,
    /// Votes included in the best chain.
    pub votes_included: u64,
    /// Per space class, honest farmers only.
    pub space_classes: Vec<SpaceClass>,
    /// Median slots from a best-chain block's slot to the slot node 0 finalized it.
    pub median_slots_to_finality: Option<u64>,
    /// Farmers that equivocate.
    pub equivocators: usize,
    /// Slots in which an equivocator sealed two blocks.
    pub equivocations: u64,
    /// Slots for which two blocks of one farmer were both accepted by some node (the rules allow none).
    pub equivocations_accepted: u64,
    /// Second blocks nodes refused as equivocations (summed over nodes).
    pub equivocations_refused: u64,
    /// Equivocating farmers that sealed two blocks for a slot at least once.
    pub equivocated: usize,
    /// Equivocating farmers block-listed on the final best chain.
    pub equivocators_blocklisted: usize,
    /// Honest farmers block-listed on the final best chain (always 0).
    pub honest_blocklisted: usize,
    /// Blocks nodes refused for forking below their archiving point (stranded nodes after a long
    /// partition).
    pub refused_below_archiving_point: u64,
    /// Invalid blocks refused, by reason (summed over nodes).
    pub invalid: std::collections::BTreeMap<String, u64>,
    /// Messages delivered and retransmitted.
    pub messages: u64,
    /// Of which lost once and retransmitted.
    pub retransmitted: u64,
    /// One row per slot (for `--csv`).
    #[serde(skip)]
    pub rows: Vec<SlotRow>,
}

impl Report {
    /// A human-readable summary.
    pub fn summary(&self) -> String {
        let mut lines = vec![
            format!(
                "farmers {} · slots {} · seed {}",
                self.farmers, self.slots, self.seed
            ),
            format!(
                "best block #{} ({} of {} nodes agree)",
                self.best_number, self.nodes_agreeing, self.farmers
            ),
            format!(
                "growth: {} slots with blocks, {:.1} expected from the plotted space; {} blocks authored",
                self.slots_with_blocks, self.expected_blocks, self.blocks_authored
            ),
            format!(
                "forks: {} orphaned ({:.1} %), deepest {} blocks",
                self.orphaned,
                self.fork_rate * 100.0,
                self.max_fork_depth
            ),
            format!("votes included: {}", self.votes_included),
        ];
        for class in &self.space_classes {
            lines.push(format!(
                "  {} piece(s) × {} farmers: space {:.1} %, rewards {:.1} %",
                class.pieces,
                class.farmers,
                class.space_share * 100.0,
                class.reward_share * 100.0
            ));
        }
        lines.push(match self.median_slots_to_finality {
            Some(slots) => format!("finality: median {slots} slots after a block"),
            None => "finality: no block final yet".into(),
        });
        if self.equivocators > 0 {
            lines.push(format!(
                "equivocation: {} farmers, {} double seals, {} refusals, {} block-listed (honest block-listed: {})",
                self.equivocators,
                self.equivocations,
                self.equivocations_refused,
                self.equivocators_blocklisted,
                self.honest_blocklisted
            ));
        }
        if self.refused_below_archiving_point > 0 {
            lines.push(format!(
                "{} blocks refused for forking below a node's archiving point",
                self.refused_below_archiving_point
            ));
        }
        for (reason, count) in &self.invalid {
            lines.push(format!("refused {count}× as invalid: {reason}"));
        }
        lines.push(format!(
            "network: {} messages, {} retransmitted",
            self.messages, self.retransmitted
        ));
        lines.push(format!("final hash {}", self.final_hash));
        lines.join("\n")
    }

    /// The per-slot rows as CSV.
    pub fn csv(&self) -> String {
        let mut out = String::from("slot,best_number,authored,finalized,expected\n");
        for row in &self.rows {
            out.push_str(&format!(
                "{},{},{},{},{:.3}\n",
                row.slot, row.best_number, row.authored, row.finalized, row.expected
            ));
        }
        out
    }
}
