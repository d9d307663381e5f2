//! `docs/metrics.md` checked against a live scrape: the tables there are the metrics' contract, and the
//! binaries' tests make sure the code exposes exactly them, with their types and labels.

use std::collections::BTreeMap;

use prometheus_parse::{LineInfo, SampleType, Scrape};

/// The metrics `docs/metrics.md` lists in the section for `binary`: name → (type, labels).
pub fn documented_metrics(binary: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/metrics.md"))
        .expect("docs/metrics.md");
    let heading = format!("\n## `{binary}`\n");
    let section = docs
        .split(heading.as_str())
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap_or_else(|| panic!("no `{binary}` section in docs/metrics.md"));
    section
        .lines()
        .filter(|line| line.starts_with("| `acre_"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let labels = cells[3]
                .split(',')
                .map(|label| label.trim().trim_matches('`'))
                .filter(|label| !label.is_empty())
                .map(str::to_owned)
                .collect();
            (
                cells[1].trim_matches('`').to_owned(),
                (cells[2].to_owned(), labels),
            )
        })
        .collect()
}

/// Parses a scrape of `binary` with `prometheus-parse` and checks it against the documented metrics:
/// every one present with its type and labels, and nothing undocumented.
pub fn assert_metrics_match_docs(binary: &str, body: &str) {
    let documented = documented_metrics(binary);
    assert!(documented.len() >= 10, "{documented:?}");
    let mut exposed = BTreeMap::new();
    let mut sample_lines = 0;
    for line in body.lines() {
        match LineInfo::parse(line) {
            LineInfo::Type {
                metric_name,
                sample_type,
                ..
            } => {
                // The parser names a histogram by its bucket series.
                let name = match sample_type {
                    SampleType::Histogram => metric_name.trim_end_matches("_bucket").to_owned(),
                    _ => metric_name,
                };
                exposed.insert(name, sample_type);
            }
            // A histogram's bucket lines fold into one sample per label set (counted below).
            LineInfo::Sample { metric_name, .. } if metric_name.ends_with("_bucket") => {}
            LineInfo::Sample { .. } => sample_lines += 1,
            _ => {}
        }
    }
    let scrape = Scrape::parse(body.lines().map(|line| Ok(line.to_owned()))).expect("the scrape parses");
    let histograms = scrape
        .samples
        .iter()
        .filter(|sample| matches!(sample.value, prometheus_parse::Value::Histogram(_)))
        .count();
    assert_eq!(
        scrape.samples.len(),
        sample_lines + histograms,
        "every sample line parses: {body}"
    );
    let undocumented: Vec<_> = exposed
        .keys()
        .filter(|name| !documented.contains_key(*name))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exposed but not in docs/metrics.md: {undocumented:?}"
    );
    for (name, (kind, labels)) in &documented {
        let expected = match kind.as_str() {
            "counter" => SampleType::Counter,
            "gauge" => SampleType::Gauge,
            "histogram" => SampleType::Histogram,
            other => panic!("{name}: undocumented type {other}"),
        };
        assert_eq!(
            exposed.get(name),
            Some(&expected),
            "{name} is not exposed as a {kind}"
        );
        // OpenMetrics names a counter's sample `<name>_total`.
        let sample_name = if expected == SampleType::Counter {
            format!("{name}_total")
        } else {
            name.clone()
        };
        let samples: Vec<_> = scrape
            .samples
            .iter()
            .filter(|sample| sample.metric == sample_name)
            .collect();
        if labels.is_empty() {
            assert_eq!(samples.len(), 1, "{name} has one unlabelled sample");
        }
        for sample in samples {
            let mut keys: Vec<&String> = sample.labels.keys().collect();
            keys.sort();
            let mut documented: Vec<&String> = labels.iter().collect();
            documented.sort();
            assert_eq!(keys, documented, "{name}'s labels");
        }
    }
}
