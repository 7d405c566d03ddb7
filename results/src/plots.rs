//! Jepsen's three performance plots, with fault intervals shaded.
//!
//! - `latency-raw`: every completed operation at its start time, latency on a
//!   log axis, colored by outcome, shaped by function;
//! - `latency-quantiles`: p50, p95, p99 and max latency per time bucket, per
//!   function (color by quantile, shape by function, as in the raw plot);
//! - `rate`: completions per second per time bucket, by outcome.
//!
//! Each fault is a translucent band over the time it was in effect, one color
//! per kind, named in the legend. Text is drawn with the bundled DejaVu Sans
//! through `ab_glyph`: the system font stack (fontconfig, freetype) is not on
//! a bare machine, and plotters panics drawing text without a font.

use crate::faults::{Fault, KINDS};
use checker::{Func, Operation, Outcome};
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::{Drawable, PointCollection};
use plotters::prelude::*;
use std::io;
use std::path::{Path, PathBuf};

/// Width and height of every plot, in pixels.
pub const SIZE: (u32, u32) = (1200, 600);

/// The plots' file names without extension, in the order the report shows them.
pub const NAMES: [&str; 3] = ["latency-raw", "latency-quantiles", "rate"];

/// How plots are written: PNG by default; SVG is smaller for short runs and
/// scales, but grows with every point drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageFormat {
    #[default]
    Png,
    Svg,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Svg => "svg",
        }
    }
}

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font as `sans-serif`, once; plotters looks fonts up
/// by family name when it draws text.
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled DejaVu Sans is a valid font"))
    });
}

const OUTCOMES: [(Outcome, &str, RGBColor); 3] = [
    (Outcome::Ok, "ok", RGBColor(0x1f, 0x77, 0xb4)),
    (Outcome::Fail, "fail", RGBColor(0xd6, 0x27, 0x28)),
    (Outcome::Info, "info", RGBColor(0xff, 0x7f, 0x0e)),
];
const QUANTILES: [(f64, &str, RGBColor); 4] = [
    (0.5, "p50", RGBColor(0x1b, 0x9e, 0x77)),
    (0.95, "p95", RGBColor(0x75, 0x70, 0xb3)),
    (0.99, "p99", RGBColor(0xd9, 0x5f, 0x02)),
    (1.0, "max", RGBColor(0xe7, 0x29, 0x8a)),
];
/// One color per entry of [`KINDS`]; other kinds are gray.
pub const FAULT_COLORS: [RGBColor; 3] = [
    RGBColor(0x99, 0x66, 0xcc),
    RGBColor(0x55, 0x55, 0x55),
    RGBColor(0x2c, 0xa0, 0x2c),
];
const OTHER_FAULT: RGBColor = RGBColor(0xaa, 0xaa, 0x44);

/// The color of a fault kind, as `#rrggbb` for the report.
pub fn fault_color(kind: &str) -> RGBColor {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .map_or(OTHER_FAULT, |i| FAULT_COLORS[i])
}

type Chart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

/// What every plot needs, computed once.
struct Data<'a> {
    ops: &'a [Operation],
    faults: &'a [Fault],
    /// Seconds from the start of the test to the last event drawn.
    span: f64,
    /// Functions in order of first appearance; a function's index picks its marker.
    funcs: Vec<&'a Func>,
}

const NS: f64 = 1e9;

/// Draws the three plots into `dir`, returning the files written.
pub fn draw_all(
    dir: &Path,
    ops: &[Operation],
    faults: &[Fault],
    format: ImageFormat,
) -> io::Result<Vec<PathBuf>> {
    register_font();
    let last = ops
        .iter()
        .map(|op| op.ret_time.unwrap_or(op.call_time))
        .chain(faults.iter().map(|f| f.end.unwrap_or(f.start)))
        .max()
        .unwrap_or(0);
    let mut funcs: Vec<&Func> = Vec::new();
    for op in ops {
        if !funcs.contains(&&op.f) {
            funcs.push(&op.f);
        }
    }
    let data = Data {
        ops,
        faults,
        // Histories without a real clock (Porcupine logs) span nanoseconds.
        span: (last as f64 / NS).max(1e-9),
        funcs,
    };
    let mut written = Vec::new();
    for name in NAMES {
        let path = dir.join(format!("{name}.{}", format.extension()));
        let drawn = match format {
            ImageFormat::Png => draw(
                BitMapBackend::new(&path, SIZE).into_drawing_area(),
                name,
                &data,
            ),
            ImageFormat::Svg => draw(
                SVGBackend::new(&path, SIZE).into_drawing_area(),
                name,
                &data,
            ),
        };
        drawn.map_err(|e| io::Error::other(format!("cannot draw {}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    name: &str,
    data: &Data,
) -> Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    match name {
        "latency-raw" => latency_raw(&root, data),
        "latency-quantiles" => latency_quantiles(&root, data),
        "rate" => rate(&root, data),
        other => unreachable!("no plot named {other}"),
    }
    .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn latency_raw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &Data) -> DrawResult<DB> {
    let points = data.ops.iter().filter_map(|op| {
        let ret = op.ret_time?;
        Some((op, op.call_time as f64 / NS, latency_ms(op.call_time, ret)))
    });
    let range = log_range(points.clone().map(|(_, _, l)| l));
    let mut chart = chart(
        root,
        "Latency of every operation",
        "latency (ms)",
        range.log_scale(),
        data,
    )?;
    for (i, f) in data.funcs.iter().enumerate() {
        for (outcome, _, color) in OUTCOMES {
            let style = color.mix(0.6).filled();
            let mine = points
                .clone()
                .filter(|(op, _, _)| op.outcome == outcome && op.f == **f);
            markers(&mut chart, i, mine.map(|(_, t, l)| (t, l)), style, None)?;
        }
    }
    legend_outcomes(&mut chart)?;
    legend_funcs(&mut chart, data)?;
    finish(&mut chart, data)
}

fn latency_quantiles<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &Data,
) -> DrawResult<DB> {
    let width = bucket(data.span, 40.0);
    let mut lines = Vec::new(); // (function index, quantile index, points)
    for (i, f) in data.funcs.iter().enumerate() {
        let mut buckets: Vec<Vec<f64>> = Vec::new();
        for op in data
            .ops
            .iter()
            .filter(|op| op.f == **f && op.outcome != Outcome::Info)
        {
            let Some(ret) = op.ret_time else { continue };
            let b = (op.call_time as f64 / NS / width) as usize;
            if buckets.len() <= b {
                buckets.resize(b + 1, Vec::new());
            }
            buckets[b].push(latency_ms(op.call_time, ret));
        }
        buckets.iter_mut().for_each(|b| b.sort_by(f64::total_cmp));
        for (q, (quantile, _, _)) in QUANTILES.iter().enumerate() {
            let points: Vec<(f64, f64)> = buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
                .map(|(n, b)| {
                    let at = ((b.len() - 1) as f64 * quantile).round() as usize;
                    ((n as f64 + 0.5) * width, b[at])
                })
                .collect();
            lines.push((i, q, points));
        }
    }
    let range = log_range(lines.iter().flat_map(|(_, _, p)| p.iter().map(|&(_, l)| l)));
    let title = format!("Latency quantiles per {} bucket", seconds(width));
    let mut chart = chart(root, &title, "latency (ms)", range.log_scale(), data)?;
    for (i, q, points) in &lines {
        let color = QUANTILES[*q].2;
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))?;
        markers(&mut chart, *i, points.iter().copied(), color.filled(), None)?;
    }
    for (_, label, color) in QUANTILES {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new([(x - 8, y), (x + 8, y)], color.stroke_width(3))
            });
    }
    legend_funcs(&mut chart, data)?;
    finish(&mut chart, data)
}

fn rate<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, data: &Data) -> DrawResult<DB> {
    let width = bucket(data.span, 60.0);
    let buckets = (data.span / width) as usize + 1;
    let mut counts = vec![[0u32; 3]; buckets];
    for op in data.ops {
        if let Some(ret) = op.ret_time {
            let b = ((ret as f64 / NS / width) as usize).min(buckets - 1);
            let o = OUTCOMES
                .iter()
                .position(|(o, _, _)| *o == op.outcome)
                .expect("every outcome");
            counts[b][o] += 1;
        }
    }
    let top = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64 / width;
    let title = format!("Throughput per {} bucket", seconds(width));
    let mut chart = chart(root, &title, "operations / s", 0.0..top * 1.1, data)?;
    for (o, (_, label, color)) in OUTCOMES.iter().enumerate() {
        let points = counts
            .iter()
            .enumerate()
            .map(|(n, c)| ((n as f64 + 0.5) * width, c[o] as f64 / width));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new([(x - 8, y), (x + 8, y)], color.stroke_width(3))
            });
    }
    finish(&mut chart, data)
}

/// Builds a chart over the run's time span with `y` as its vertical axis, and
/// shades the faults first so the data is drawn over them.
fn chart<'a, DB: DrawingBackend, Y: AsRangedCoord<Value = f64>>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_desc: &str,
    y: Y,
    data: &Data,
) -> Result<Chart<'a, DB, Y::CoordDescType>, DrawingAreaErrorKind<DB::ErrorType>>
where
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(0.0..data.span, y)?;
    chart
        .configure_mesh()
        .x_desc("time since the test started (s)")
        .y_desc(y_desc)
        .y_label_formatter(&|v| number(*v))
        .x_label_formatter(&|v| number(*v))
        .label_style(("sans-serif", 14))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let (lo, hi) = (chart.y_range().start, chart.y_range().end);
    let px_per_s = f64::from(SIZE.0) / data.span;
    for fault in data.faults {
        let color = fault_color(&fault.kind);
        let (start, end) = (
            fault.start as f64 / NS,
            fault.end.map_or(data.span, |e| e as f64 / NS),
        );
        chart.draw_series(std::iter::once(Rectangle::new(
            [(start, lo), (end, hi)],
            color.mix(0.18).filled(),
        )))?;
        // Name the band where it is wide enough to hold the name.
        if (end - start) * px_per_s > 60.0 {
            let font = ("sans-serif", 13).into_font().color(&color);
            chart.draw_series(std::iter::once(Text::new(
                fault.kind.clone(),
                (start, hi),
                font,
            )))?;
        }
    }
    Ok(chart)
}

/// Adds one legend entry per fault kind present, then draws the legend.
fn finish<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, DB, Y>,
    data: &Data,
) -> DrawResult<DB> {
    let mut kinds: Vec<&str> = data.faults.iter().map(|f| f.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let color = fault_color(kind);
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(kind)
            .legend(move |(x, y)| {
                Rectangle::new([(x - 8, y - 6), (x + 8, y + 6)], color.mix(0.35).filled())
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 14))
        .draw()
}

fn legend_outcomes<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, DB, Y>,
) -> DrawResult<DB> {
    for (_, label, color) in OUTCOMES {
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
    }
    Ok(())
}

fn legend_funcs<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, DB, Y>,
    data: &Data,
) -> DrawResult<DB> {
    for (i, f) in data.funcs.iter().enumerate() {
        markers(
            chart,
            i,
            std::iter::empty(),
            BLACK.filled(),
            Some(f.as_str()),
        )?;
    }
    Ok(())
}

/// Draws `points` with the marker of the `i`th function: circle, triangle,
/// cross, square, then again. With a `label`, also adds the marker to the legend.
fn markers<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut Chart<'a, DB, Y>,
    i: usize,
    points: impl Iterator<Item = (f64, f64)>,
    style: ShapeStyle,
    label: Option<&str>,
) -> DrawResult<DB> {
    match i % 4 {
        0 => shaped(chart, points, label, move || Circle::new((0, 0), 3, style)),
        1 => shaped(chart, points, label, move || {
            TriangleMarker::new((0, 0), 4, style)
        }),
        2 => shaped(chart, points, label, move || {
            Cross::new((0, 0), 3, style.stroke_width(2))
        }),
        _ => shaped(chart, points, label, move || {
            Rectangle::new([(-3, -3), (3, 3)], style)
        }),
    }
}

/// One series of `shape` at each point (shapes are in pixels around the point,
/// so they keep their size on a log axis).
fn shaped<'a, DB, Y, E>(
    chart: &mut Chart<'a, DB, Y>,
    points: impl Iterator<Item = (f64, f64)>,
    label: Option<&str>,
    shape: impl Fn() -> E + 'a,
) -> DrawResult<DB>
where
    DB: DrawingBackend + 'a,
    Y: Ranged<ValueType = f64>,
    E: Drawable<DB> + 'a,
    for<'b> &'b E: PointCollection<'b, (i32, i32)>,
{
    let series = chart.draw_series(points.map(|p| EmptyElement::at(p) + shape()))?;
    if let Some(label) = label {
        series
            .label(label)
            .legend(move |p| EmptyElement::at(p) + shape());
    }
    Ok(())
}

fn latency_ms(call: u64, ret: u64) -> f64 {
    // A log axis has no zero: clamp to a nanosecond.
    (ret.saturating_sub(call).max(1)) as f64 / 1e6
}

/// A log axis range around `values`, padded so no point sits on the frame.
fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 0.1..10.0;
    }
    lo / 2.0..(hi * 2.0).max(lo * 10.0)
}

/// The smallest round bucket width giving at most about `count` buckets.
fn bucket(span: f64, count: f64) -> f64 {
    const ROUND: [f64; 18] = [
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
        120.0, 300.0, 600.0,
    ];
    ROUND
        .into_iter()
        .find(|w| span / w <= count)
        .unwrap_or(span / count)
}

/// An axis label: three significant digits without trailing zeros, so tiny
/// latencies (histories with no real clock) read `0.000001`, not
/// `9.99999999e-7`, and large rates read `10000`, not `10000.0`.
fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let text = format!("{v:.decimals$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{} ms", number(s * 1e3))
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_round() {
        assert_eq!(bucket(60.0, 60.0), 1.0);
        assert_eq!(bucket(61.0, 60.0), 2.0);
        assert_eq!(bucket(0.02, 40.0), 0.001);
        assert_eq!(seconds(0.005), "5 ms");
        assert_eq!(number(9.99999999e-7), "0.000001");
        assert_eq!(number(10000.0), "10000");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(0.0), "0");
    }
}
