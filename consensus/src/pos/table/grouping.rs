//! Stable grouping of table entries by a key (a counting sort), the only ordering tables need.
//!
//! Items come as ordered chunks (one per parallel worker, or a single one); grouping them keeps the input
//! order inside each group, so the result does not depend on how the input was chunked. In parallel the
//! groups are split into ranges, each worker reads every item and writes only its own range, so no two
//! threads ever write the same memory.

// Casts: group starts are positions in a table of fewer than 2^32 entries.
#![allow(clippy::cast_possible_truncation)]

/// `starts[g]` = index of the first item of group `g` (and `starts[groups]` = item count).
pub(super) fn group_starts<T>(chunks: &[&[T]], groups: usize, key: impl Fn(&T) -> usize) -> Vec<u32> {
    let mut starts = vec![0u32; groups + 1];
    for item in chunks.iter().flat_map(|chunk| chunk.iter()) {
        starts[key(item) + 1] += 1;
    }
    for group in 1..starts.len() {
        starts[group] += starts[group - 1];
    }
    starts
}

/// Writes `value(index, item)` for every item (`index` counting across chunks) into `out` at its group's
/// next free slot. `out` must hold exactly `starts[groups]` slots; every slot is written once.
pub(super) fn scatter<T: Sync, U: Send>(
    chunks: &[&[T]],
    starts: &[u32],
    key: impl Fn(&T) -> usize + Sync,
    value: impl Fn(usize, &T) -> U + Sync,
    out: &mut [U],
    parallel: bool,
) {
    let groups = starts.len() - 1;
    #[cfg(feature = "parallel")]
    if parallel {
        use rayon::prelude::*;
        let ranges = (2 * rayon::current_num_threads()).clamp(1, groups.max(1));
        let per_range = groups.div_ceil(ranges);
        let mut parts = Vec::with_capacity(ranges);
        let mut rest = out;
        for first in (0..groups).step_by(per_range.max(1)) {
            let last = (first + per_range).min(groups);
            let len = (starts[last] - starts[first]) as usize;
            let (part, tail) = rest.split_at_mut(len);
            parts.push((first..last, part));
            rest = tail;
        }
        parts.into_par_iter().for_each(|(range, part)| {
            scatter_range(chunks, starts, range, &key, &value, part);
        });
        return;
    }
    let _ = parallel;
    scatter_range(chunks, starts, 0..groups, &key, &value, out);
}

/// Scatters the items whose group lies in `range` into `out`, which starts at `starts[range.start]`.
fn scatter_range<T, U>(
    chunks: &[&[T]],
    starts: &[u32],
    range: std::ops::Range<usize>,
    key: &impl Fn(&T) -> usize,
    value: &impl Fn(usize, &T) -> U,
    out: &mut [U],
) {
    let base = starts[range.start];
    let mut cursor: Vec<u32> = starts[range.clone()].iter().map(|start| start - base).collect();
    let everything = range.start == 0 && range.end == starts.len() - 1;
    let mut index = 0;
    for chunk in chunks {
        for item in chunk.iter() {
            let group = key(item);
            if everything || range.contains(&group) {
                let slot = &mut cursor[group - range.start];
                out[*slot as usize] = value(index, item);
                *slot += 1;
            }
            index += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_stably_whatever_the_chunking() {
        let items: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(2_654_435_761) % 97).collect();
        let key = |item: &u32| (*item % 13) as usize;
        let whole = [items.as_slice()];
        let starts = group_starts(&whole, 13, key);
        let mut expected = vec![(0usize, 0u32); items.len()];
        scatter(
            &whole,
            &starts,
            key,
            |index, item| (index, *item),
            &mut expected,
            false,
        );
        let mut sorted: Vec<_> = items.iter().copied().enumerate().collect();
        sorted.sort_by_key(|&(index, item)| (key(&item), index));
        assert_eq!(expected, sorted);

        let chunked: Vec<&[u32]> = items.chunks(77).collect();
        assert_eq!(group_starts(&chunked, 13, key), starts);
        for parallel in [false, true] {
            let mut out = vec![(0usize, 0u32); items.len()];
            scatter(
                &chunked,
                &starts,
                key,
                |index, item| (index, *item),
                &mut out,
                parallel,
            );
            assert_eq!(out, expected);
        }
    }
}
