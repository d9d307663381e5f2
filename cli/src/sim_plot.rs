//! `acre sim --plot FILE.png`: a run's chain growth and reward share, drawn as one PNG.
//!
//! The left panel is node 0's chain per slot against what the farmers' plotted space predicts (the
//! expected slots with a block, summed from the same per-slot probabilities as the report's
//! `expected_blocks`), with the finalized block and every block authored on any branch; a partition is
//! shaded. The right panel is each space class's share of the rewards against its share of the space:
//! a fair chain puts every class on the diagonal. Text is drawn with an embedded DejaVu Sans (its
//! licence is `assets/DejaVuSans.LICENSE`), so drawing needs no system fonts.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use acre_sim::Report;
use anyhow::{Context, Result, anyhow, bail};
use plotters::prelude::*;
use plotters::style::FontStyle;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 520;
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn register_font() -> Result<()> {
    static REGISTERED: Once = Once::new();
    let mut result = Ok(());
    REGISTERED.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the embedded font does not parse"));
    });
    result
}

/// Refuses, before a long run, a path the PNG could not be written to.
pub(crate) fn check_path(path: &Path) -> Result<()> {
    if path.extension().and_then(|extension| extension.to_str()) != Some("png") {
        bail!("--plot draws a PNG: {} must end in .png", path.display());
    }
    let parent = path.parent().filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        bail!(
            "--plot {}: {} is not a directory",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

/// Draws `report` (with the run's partition, if any) as a PNG at `path`.
pub(crate) fn draw(report: &Report, partition: Option<&Range<u64>>, path: &Path) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|error| anyhow!("{error}"))?;
    let (left, right) = root.split_horizontally(WIDTH * 3 / 5);
    growth(report, partition, &left).map_err(|error| anyhow!("drawing chain growth: {error}"))?;
    rewards(report, &right).map_err(|error| anyhow!("drawing reward share: {error}"))?;
    root.present()
        .map_err(|error| anyhow!("{error}"))
        .with_context(|| format!("writing {}", path.display()))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
/// One line of the growth panel: a column of the per-slot rows.
type Column = fn(&acre_sim::SlotRow) -> f64;
type DrawResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

fn growth(report: &Report, partition: Option<&Range<u64>>, area: &Area<'_>) -> DrawResult {
    let slots = report.slots.max(1) as f64;
    let top = report
        .rows
        .iter()
        .map(|row| {
            (row.authored as f64)
                .max(row.expected)
                .max(row.best_number as f64)
        })
        .fold(1.0, f64::max)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("Chain growth: {} farmers, seed {}", report.farmers, report.seed),
            ("sans-serif", 20),
        )
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..slots, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("slot")
        .y_desc("blocks")
        .x_label_formatter(&|value| format!("{value:.0}"))
        .y_label_formatter(&|value| format!("{value:.0}"))
        .light_line_style(WHITE)
        .label_style(("sans-serif", 13))
        .draw()?;
    if let Some(range) = partition {
        let shade = RGBColor(250, 224, 160).mix(0.6).filled();
        chart
            .draw_series([Rectangle::new(
                [(range.start as f64, 0.0), (range.end as f64, top)],
                shade,
            )])?
            .label(format!("partition {}..{}", range.start, range.end))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], shade));
    }
    let series: [(&str, RGBColor, Column); 4] = [
        ("expected from space", RGBColor(120, 120, 120), |row| row.expected),
        ("authored (all branches)", RGBColor(214, 96, 77), |row| {
            row.authored as f64
        }),
        ("best block (node 0)", RGBColor(33, 102, 172), |row| {
            row.best_number as f64
        }),
        ("finalized", RGBColor(27, 120, 55), |row| row.finalized as f64),
    ];
    for (label, color, value) in series {
        chart
            .draw_series(LineSeries::new(
                report.rows.iter().map(|row| (row.slot as f64, value(row))),
                color.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn rewards(report: &Report, area: &Area<'_>) -> DrawResult {
    let top = report
        .space_classes
        .iter()
        .map(|class| class.space_share.max(class.reward_share))
        .fold(0.05, f64::max)
        * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption("Reward share against space share", ("sans-serif", 20))
        .margin(14)
        // Room for the labels of the classes at the right edge.
        .margin_right(96)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..top, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("share of the space")
        .y_desc("share of the rewards")
        .light_line_style(WHITE)
        .label_style(("sans-serif", 13))
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            [(0.0, 0.0), (top, top)],
            RGBColor(150, 150, 150).stroke_width(1),
        ))?
        .label("fair (reward = space)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(150, 150, 150)));
    let point = RGBColor(33, 102, 172);
    chart
        .draw_series(report.space_classes.iter().map(|class| {
            EmptyElement::at((class.space_share, class.reward_share))
                + Circle::new((0, 0), 5, point.filled())
                + Text::new(
                    format!(
                        "{} piece{} × {}",
                        class.pieces,
                        if class.pieces == 1 { "" } else { "s" },
                        class.farmers
                    ),
                    (9, -7),
                    ("sans-serif", 13),
                )
        }))?
        .label("space class (pieces per farmer × farmers)")
        .legend(move |(x, y)| Circle::new((x + 9, y), 5, point.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
