//! Hand-written SVG line charts for the experiment commands.
//!
//! # Owns
//! Turning named series of `(x, y)` points into a self-contained SVG file:
//! one panel per figure as the commands use it (stacking is possible), with
//! axes (linear or base-10 logarithmic), ticks, a legend, one `<polyline>`
//! per series (straight segments, or steps for a CDF), and labelled
//! vertical markers (a percentile, the exact/lax boundary). The title is
//! centred on the whole figure and set smaller when long, never clipped.
//!
//! Hand-written rather than `plotters`: the figures are simple, the SVG
//! stays byte-stable for tests, and it costs no build time on a 2-core CI.
//!
//! # Invariants
//! The output is a pure function of the charts (no time, no randomness).
//! Every series is written as `<polyline class="series" data-series="NAME"
//! points="…">` with one marker `<circle>` per point, so a reader (or a
//! test) can find each data series by name. Points that cannot be drawn
//! (non-finite, or not positive on a log axis) are left out.

use std::fmt::Write as _;

/// One named line.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend name (also the `data-series` attribute).
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// One panel: axes, labels and series.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Chart {
    /// Title above the panel.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The lines.
    pub series: Vec<Series>,
    /// Draw each series as a step function (a CDF: flat to the next point,
    /// then straight up), starting from y = 0 at its first x.
    pub step: bool,
    /// A fixed y range instead of one fitted to the data (a CDF: 0 to 1).
    pub y_range: Option<(f64, f64)>,
    /// Labelled vertical lines at these x values.
    pub markers: Vec<Marker>,
    /// A note under the title (what is not drawn, what marks mean).
    pub note: String,
}

/// A labelled vertical line on a chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Marker {
    /// Where, in data units.
    pub x: f64,
    /// What it marks ("p99 240", "lookahead").
    pub label: String,
    /// Shade the plot right of the line (the lax quanta).
    pub shade_right: bool,
}

const WIDTH: f64 = 760.0;
const PANEL_H: f64 = 340.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 52.0;
const BOTTOM: f64 = 50.0;
const COLOURS: [&str; 10] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// An axis: maps data values to the unit interval.
#[derive(Clone, Copy, Debug)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| drawable(*v, log)) {
            let v = if log { v.log10() } else { v };
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if log {
            (lo, hi) = (lo.floor(), hi.ceil());
        } else if lo > 0.0 && lo < hi * 0.5 {
            lo = 0.0;
        }
        if hi - lo < 1e-12 {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo, hi) = (lo - pad, hi + pad);
        }
        Axis { lo, hi, log }
    }

    fn frac(&self, v: f64) -> f64 {
        let v = if self.log { v.log10() } else { v };
        (v - self.lo) / (self.hi - self.lo)
    }

    /// Tick values (in data units).
    fn ticks(&self) -> Vec<f64> {
        if self.log {
            let (a, b) = (self.lo as i32, self.hi as i32);
            let step = ((b - a) / 8 + 1).max(1);
            // Two decades or fewer: 1-2-5 ticks, so a narrow range has some.
            let mantissas: &[f64] = if b - a <= 2 { &[1.0, 2.0, 5.0] } else { &[1.0] };
            return (a..=b)
                .step_by(step as usize)
                .flat_map(|e| mantissas.iter().map(move |m| m * 10f64.powi(e)))
                .filter(|v| v.log10() <= self.hi + 1e-9)
                .collect();
        }
        let raw = (self.hi - self.lo) / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * mag);
        let first = (self.lo / step).ceil() as i64;
        let last = (self.hi / step).floor() as i64;
        (first..=last).map(|i| i as f64 * step).collect()
    }
}

fn drawable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

/// Short tick label.
fn label(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.0e}")
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        // Up to three decimals, without trailing zeros: 0.8, 1.25.
        let t = format!("{v:.3}");
        t.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// XML-escapes text.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the charts as panels stacked top to bottom in one SVG document.
pub fn render(charts: &[Chart]) -> String {
    let height = PANEL_H * charts.len().max(1) as f64;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        s,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    for (i, c) in charts.iter().enumerate() {
        panel(&mut s, c, i as f64 * PANEL_H);
    }
    s.push_str("</svg>\n");
    s
}

/// The font size (px) at which bold `text` fits in `w` pixels: 14, or
/// smaller for a long title (a bold sans-serif glyph averages about 0.62 em),
/// never below 9.
fn title_size(text: &str, w: f64) -> f64 {
    let em = text.chars().count() as f64 * 0.62;
    (w / em.max(1.0)).clamp(9.0, 14.0).floor()
}

fn title(s: &mut String, c: &Chart, y0: f64) {
    let size = title_size(&c.title, WIDTH - 20.0);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="{size}" font-weight="bold">{}</text>"#,
        WIDTH / 2.0,
        y0 + 20.0,
        escape(&c.title)
    );
    if !c.note.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="11" fill="#555">{}</text>"##,
            WIDTH / 2.0,
            y0 + 37.0,
            escape(&c.note)
        );
    }
}

fn panel(s: &mut String, c: &Chart, y0: f64) {
    let pts = || c.series.iter().flat_map(|x| x.points.iter());
    let xa = Axis::new(
        pts().map(|p| p.0).chain(c.markers.iter().map(|m| m.x)),
        c.log_x,
    );
    let ya = match c.y_range {
        Some((lo, hi)) => Axis { lo, hi, log: false },
        None => Axis::new(pts().map(|p| p.1), c.log_y),
    };
    let (pw, ph) = (WIDTH - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let px = |v: f64| LEFT + xa.frac(v) * pw;
    let py = |v: f64| y0 + TOP + (1.0 - ya.frac(v)) * ph;
    title(s, c, y0);
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##,
        y0 + TOP
    );
    // Whole-number data (threads, counts) gets whole-number ticks.
    let whole = pts().all(|p| p.0.fract() == 0.0);
    for t in xa
        .ticks()
        .into_iter()
        .filter(|t| !whole || t.fract() == 0.0)
    {
        let x = px(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            y0 + TOP,
            y0 + TOP + ph,
            y0 + TOP + ph + 16.0,
            label(t)
        );
    }
    for t in ya.ticks() {
        let y = py(t);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            label(t)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        LEFT + pw / 2.0,
        y0 + PANEL_H - 10.0,
        escape(&c.x_label)
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
        y0 + TOP + ph / 2.0,
        y0 + TOP + ph / 2.0,
        escape(&c.y_label)
    );
    markers(s, c, (&px, y0 + TOP, ph));
    for (i, ser) in c.series.iter().enumerate() {
        series(s, ser, COLOURS[i % COLOURS.len()], (&px, &py), c);
        let ly = y0 + TOP + 14.0 * i as f64 + 8.0;
        let lx = LEFT + pw + 12.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{}" y2="{ly}" stroke="{}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
            lx + 18.0,
            COLOURS[i % COLOURS.len()],
            lx + 22.0,
            ly + 4.0,
            escape(&ser.name)
        );
    }
}

/// The chart's vertical markers: a dashed line each, labels near the
/// bottom of the plot (one row per marker, with a white halo so lines under
/// them do not hide them); markers at the same x share a label.
fn markers(s: &mut String, c: &Chart, (px, top, ph): (&dyn Fn(f64) -> f64, f64, f64)) {
    let mut merged: Vec<(f64, String, bool)> = Vec::new();
    for m in c.markers.iter().filter(|m| drawable(m.x, c.log_x)) {
        match merged.iter_mut().find(|(x, _, _)| *x == m.x) {
            Some(e) => {
                e.1 = format!("{}, {}", e.1, m.label);
                e.2 |= m.shade_right;
            }
            None => merged.push((m.x, m.label.clone(), m.shade_right)),
        }
    }
    let right = LEFT + WIDTH - LEFT - RIGHT;
    for (i, (x, text, shade)) in merged.iter().enumerate() {
        let x = px(*x);
        if *shade {
            let _ = writeln!(
                s,
                r##"<rect x="{x:.1}" y="{top:.1}" width="{:.1}" height="{ph:.1}" fill="#000" fill-opacity="0.05"/>"##,
                right - x
            );
        }
        let ly = top + ph - 8.0 - 14.0 * (merged.len() - 1 - i) as f64;
        let _ = writeln!(
            s,
            r##"<line class="marker" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{:.1}" stroke="#555" stroke-dasharray="4 3"/><text x="{:.1}" y="{ly:.1}" font-size="11" fill="#222" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"##,
            top + ph,
            x + 3.0,
            escape(text)
        );
    }
}

type Project<'a> = (&'a dyn Fn(f64) -> f64, &'a dyn Fn(f64) -> f64);

fn series(s: &mut String, ser: &Series, colour: &str, (px, py): Project<'_>, c: &Chart) {
    let ok: Vec<(f64, f64)> = ser
        .points
        .iter()
        .copied()
        .filter(|&(x, y)| drawable(x, c.log_x) && drawable(y, c.log_y))
        .map(|(x, y)| (px(x), py(y)))
        .collect();
    let line = if c.step {
        steps(&ok, py(0.0))
    } else {
        ok.clone()
    };
    let points = line
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ");
    let _ = writeln!(
        s,
        r#"<polyline class="series" data-series="{}" fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>"#,
        escape(&ser.name)
    );
    for (x, y) in ok {
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{colour}"/>"#
        );
    }
}

/// The corners of a step function through `pts` (in pixels), rising from
/// the baseline `y0` at the first x.
fn steps(pts: &[(f64, f64)], y0: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(2 * pts.len() + 1);
    let mut y = y0;
    for &(px, py) in pts {
        out.push((px, y));
        out.push((px, py));
        y = py;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_names_every_series_and_skips_undrawable_points() {
        let c = Chart {
            title: "t<1>".into(),
            log_x: true,
            series: vec![
                Series {
                    name: "a".into(),
                    points: vec![(1.0, 1.0), (10.0, 2.0), (0.0, 3.0), (100.0, f64::NAN)],
                },
                Series {
                    name: "b".into(),
                    points: vec![(1.0, 0.5)],
                },
            ],
            ..Chart::default()
        };
        let svg = render(&[c]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("t&lt;1&gt;"));
        assert!(svg.contains(r#"data-series="a""#));
        assert!(svg.contains(r#"data-series="b""#));
        // Two drawable points of `a`, one of `b`.
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn long_titles_are_set_smaller_not_clipped() {
        assert_eq!(title_size("short", 740.0), 14.0);
        let long = "x".repeat(120);
        let size = title_size(&long, 740.0);
        assert!(size < 14.0 && 120.0 * 0.62 * size <= 740.0, "{size}");
    }

    #[test]
    fn a_step_cdf_rises_from_the_baseline_then_runs_flat() {
        let corners = steps(&[(10.0, 50.0), (20.0, 10.0)], 100.0);
        assert_eq!(
            corners,
            vec![(10.0, 100.0), (10.0, 50.0), (20.0, 50.0), (20.0, 10.0)]
        );
    }

    #[test]
    fn markers_at_the_same_x_share_one_label() {
        let m = |label: &str| Marker {
            x: 4.0,
            label: label.into(),
            shade_right: false,
        };
        let c = Chart {
            series: vec![Series {
                name: "a".into(),
                points: vec![(4.0, 1.0)],
            }],
            markers: vec![m("p50 4"), m("p90 4")],
            ..Chart::default()
        };
        let svg = render(&[c]);
        assert_eq!(svg.matches(r#"class="marker""#).count(), 1);
        assert!(svg.contains("p50 4, p90 4"));
    }

    #[test]
    fn log_ticks_are_powers_of_ten() {
        let a = Axis::new([3.0, 2000.0].into_iter(), true);
        assert_eq!(a.ticks(), vec![1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert!((a.frac(100.0) - 0.5).abs() < 1e-9);
    }
}
