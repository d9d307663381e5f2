//! Human-readable renderings of the node's answers (`--json` prints the wire form instead).

use std::fmt::Write;

use acre_rpc_api::{BlockInfo, ChainHead, NetworkInfo};

/// The chain head as aligned `label  value` lines.
pub(super) fn head(head: &ChainHead) -> String {
    let archived = head
        .archived_number
        .map_or_else(|| "none yet".to_owned(), |number| format!("#{number}"));
    let mut text = String::new();
    let mut line = |label: &str, value: String| {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{label:<16}{value}");
    };
    line("chain", head.chain.clone());
    line("genesis", head.genesis_hash.to_string());
    line(
        "best block",
        format!(
            "#{} {} (slot {})",
            head.best_number, head.best_hash, head.best_slot
        ),
    );
    line("finalized", format!("#{}", head.finalized_number));
    line("archived", archived);
    line(
        "history fixed",
        format!("up to #{}", head.finalized_or_archived_number),
    );
    line("segments", head.segment_count.to_string());
    line("current slot", head.current_slot.to_string());
    line("solution range", head.solution_range.to_string());
    line(
        "space pledged",
        format!("{} ({} bytes)", bytes(head.space_pledged), head.space_pledged),
    );
    text
}

/// The node's network and sync state as aligned `label  value` lines.
pub(super) fn network(network: &NetworkInfo) -> String {
    let mut text = String::new();
    let mut line = |label: &str, value: String| {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{label:<16}{value}");
    };
    let Some(peer_id) = &network.peer_id else {
        line("network", "off (--no-network)".into());
        return text;
    };
    line("peer id", peer_id.clone());
    for address in &network.listening {
        line("listening", address.clone());
    }
    line(
        "proof of time",
        if network.timekeeper {
            "timekeeper (proves it)".into()
        } else {
            "follows peers' proofs".into()
        },
    );
    line("peers", network.peers.len().to_string());
    for peer in &network.peers {
        line(
            "",
            format!("{} {} (score {})", peer.peer_id, peer.agent, peer.score),
        );
    }
    let sync = &network.sync;
    let state = match sync.state.as_str() {
        "syncing" => {
            let eta = sync
                .eta_seconds
                .map_or_else(String::new, |seconds| format!(", about {seconds} s left"));
            format!(
                "syncing: #{} of #{}, {:.1} blocks/s{eta}",
                sync.best, sync.target, sync.blocks_per_second
            )
        }
        "snap" => format!(
            "snap sync: downloading and verifying the state of a recent block (then blocks to #{})",
            sync.target
        ),
        "forked" => format!(
            "FORKED below archived history (best #{}, peers' longer chain #{}): restart the node with --resync",
            sync.best, sync.target
        ),
        other => format!("{other} (best #{}, peers' best #{})", sync.best, sync.target),
    };
    line("sync", state);
    text
}

/// A block as aligned `label  value` lines.
pub(super) fn block(block: &BlockInfo) -> String {
    let optional = |value: Option<acre_rpc_api::Hex32>| {
        value.map_or_else(|| "none (genesis)".to_owned(), |hash| hash.to_string())
    };
    let mut text = String::new();
    let mut line = |label: &str, value: String| {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "{label:<16}{value}");
    };
    line("number", block.number.to_string());
    line("hash", block.hash.to_string());
    line("parent", block.parent_hash.to_string());
    line("slot", block.slot.to_string());
    line("state root", block.state_root.to_string());
    line("author", optional(block.author));
    line("reward address", optional(block.reward_address));
    line("solution range", block.solution_range.to_string());
    let segments = block
        .segment_headers
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    line(
        "segment headers",
        if segments.is_empty() {
            "none".to_owned()
        } else {
            segments
        },
    );
    line("transactions", block.transactions.len().to_string());
    for hash in &block.transactions {
        line("", hash.to_string());
    }
    line("votes", block.votes.len().to_string());
    for vote in &block.votes {
        line(
            "",
            format!(
                "slot {} by {} (reward to {})",
                vote.slot, vote.public_key, vote.reward_address
            ),
        );
    }
    text
}

/// A byte count in binary units with two decimals (`1.50 GiB`), exact below 1 KiB.
pub(super) fn bytes(count: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if count < 1024 {
        return format!("{count} B");
    }
    // Display only: the f64 rounding of a u64 is far below the two decimals shown.
    #[allow(clippy::cast_precision_loss)]
    let mut value = count as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_use_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(3 << 29), "1.50 GiB");
        assert_eq!(bytes(5 << 40), "5.00 TiB");
        assert_eq!(bytes(u64::MAX), "16.00 EiB");
    }
}
