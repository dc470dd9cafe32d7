//! Hand-written SVG line charts for the experiment commands.
//!
//! # Owns
//! Turning named series of `(x, y)` points into a self-contained SVG file:
//! one or more panels stacked vertically, each with its own axes (linear or
//! base-10 logarithmic), ticks, a legend and one `<polyline>` per series.
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
}

const WIDTH: f64 = 760.0;
const PANEL_H: f64 = 340.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
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
            return (a..=b)
                .step_by(step as usize)
                .map(|e| 10f64.powi(e))
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
    } else if a >= 100.0 || (v.fract() == 0.0) {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
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

fn panel(s: &mut String, c: &Chart, y0: f64) {
    let pts = || c.series.iter().flat_map(|x| x.points.iter());
    let xa = Axis::new(pts().map(|p| p.0), c.log_x);
    let ya = Axis::new(pts().map(|p| p.1), c.log_y);
    let (pw, ph) = (WIDTH - LEFT - RIGHT, PANEL_H - TOP - BOTTOM);
    let px = |v: f64| LEFT + xa.frac(v) * pw;
    let py = |v: f64| y0 + TOP + (1.0 - ya.frac(v)) * ph;
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        LEFT + pw / 2.0,
        y0 + 22.0,
        escape(&c.title)
    );
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>"##,
        y0 + TOP
    );
    for t in xa.ticks() {
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

type Project<'a> = (&'a dyn Fn(f64) -> f64, &'a dyn Fn(f64) -> f64);

fn series(s: &mut String, ser: &Series, colour: &str, (px, py): Project<'_>, c: &Chart) {
    let ok: Vec<(f64, f64)> = ser
        .points
        .iter()
        .copied()
        .filter(|&(x, y)| drawable(x, c.log_x) && drawable(y, c.log_y))
        .map(|(x, y)| (px(x), py(y)))
        .collect();
    let points = ok
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
    fn log_ticks_are_powers_of_ten() {
        let a = Axis::new([3.0, 2000.0].into_iter(), true);
        assert_eq!(a.ticks(), vec![1.0, 10.0, 100.0, 1000.0, 10000.0]);
        assert!((a.frac(100.0) - 0.5).abs() < 1e-9);
    }
}
