//! The benchmark summary as an SVG bar chart (see the `heart-plot` binary). Plain SVG written by
//! hand: two bars per case (requests per second, p99 latency), each scaled to its column's largest
//! value, with the numbers printed beside the bars.

use std::fmt::Write as _;

/// One case of the summary table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What was measured.
    pub label: String,
    /// Concurrent connections.
    pub connections: u32,
    /// Requests per second.
    pub rps: f64,
    /// 99th percentile latency, in milliseconds.
    pub p99_ms: f64,
}

/// wrk's latency text (`850.00us`, `13.52ms`, `1.31s`, `2.00m`) in milliseconds.
pub fn latency_ms(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    Some(number * factor)
}

/// The rows of `| what | connections | req/s | p50 | p99 | non-2xx |`, and the lines that looked
/// like rows but did not parse.
pub fn parse_summary(text: &str) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    for line in text.lines().map(str::trim) {
        if !line.starts_with('|') || line.starts_with("|---") || line.starts_with("| what") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let row = (cells.len() >= 5)
            .then(|| {
                Some(Row {
                    label: cells[0].replace("**", ""),
                    connections: cells[1].parse().ok()?,
                    rps: cells[2].parse().ok()?,
                    p99_ms: latency_ms(cells[4])?,
                })
            })
            .flatten();
        match row {
            Some(row) => rows.push(row),
            None => skipped.push(line.to_owned()),
        }
    }
    (rows, skipped)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The chart of `rows` under `title`.
pub fn svg(title: &str, rows: &[Row]) -> String {
    const ROW: f64 = 24.0;
    const TOP: f64 = 56.0;
    const LABEL_W: f64 = 520.0;
    const BAR_W: f64 = 300.0;
    const GAP: f64 = 130.0;
    let width = LABEL_W + 2.0 * (BAR_W + GAP);
    let height = TOP + ROW * rows.len() as f64 + 16.0;
    let max_rps = rows.iter().map(|r| r.rps).fold(1.0, f64::max);
    let max_p99 = rows.iter().map(|r| r.p99_ms).fold(1.0, f64::max);
    let rps_x = LABEL_W;
    let p99_x = LABEL_W + BAR_W + GAP;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="8" y="20" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        out,
        r#"<text x="{rps_x}" y="44" font-weight="bold">requests/s (longer is better)</text><text x="{p99_x}" y="44" font-weight="bold">p99 latency (shorter is better)</text>"#
    );
    for (i, row) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let shade = if i % 2 == 0 { "#f4f6f8" } else { "white" };
        let _ = writeln!(
            out,
            r#"<rect x="0" y="{y}" width="{width}" height="{ROW}" fill="{shade}"/>"#
        );
        let text_y = y + 16.0;
        let _ = writeln!(
            out,
            r#"<text x="8" y="{text_y}">{} ({} conn.)</text>"#,
            escape(&row.label),
            row.connections
        );
        let rps_w = (row.rps / max_rps * BAR_W).max(1.0);
        let p99_w = (row.p99_ms / max_p99 * BAR_W).max(1.0);
        let bar_y = y + 5.0;
        let _ = writeln!(
            out,
            r##"<rect x="{rps_x}" y="{bar_y}" width="{rps_w:.1}" height="14" fill="#2f7ed8"/><text x="{:.1}" y="{text_y}">{:.0}</text>"##,
            rps_x + rps_w + 4.0,
            row.rps
        );
        let _ = writeln!(
            out,
            r##"<rect x="{p99_x}" y="{bar_y}" width="{p99_w:.1}" height="14" fill="#d8572f"/><text x="{:.1}" y="{text_y}">{:.2} ms</text>"##,
            p99_x + p99_w + 4.0,
            row.p99_ms
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_latencies_are_read_in_milliseconds() {
        assert_eq!(latency_ms("850.00us"), Some(0.85));
        assert_eq!(latency_ms("13.52ms"), Some(13.52));
        assert_eq!(latency_ms("1.31s"), Some(1310.0));
        assert_eq!(latency_ms("2.00m"), Some(120_000.0));
        assert_eq!(latency_ms("fast"), None);
        assert_eq!(latency_ms("12"), None);
    }

    #[test]
    fn the_summary_table_becomes_rows_and_bars() {
        let text =
            "| what | connections | req/s | p50 | p99 | non-2xx |\n|---|---|---|---|---|---|\n\
                    | edge: page <cached> | 32 | 7600.5 | 3.1ms | 9.80ms | 0 |\n\
                    | core: page | 32 | 2500 | 10ms | 19.60ms | 0 |\n\
                    | broken | x | y | z | w | 0 |\n";
        let (rows, skipped) = parse_summary(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(skipped.len(), 1);
        assert_eq!(rows[0].rps, 7600.5);
        assert_eq!(rows[1].p99_ms, 19.6);
        let svg = svg("t", &rows);
        assert!(svg.contains("edge: page &lt;cached&gt; (32 conn.)"));
        // The largest value of each column fills it: 300 px.
        assert!(svg.contains(r##"width="300.0" height="14" fill="#2f7ed8""##));
        assert!(svg.contains(r##"width="300.0" height="14" fill="#d8572f""##));
        assert!(svg.contains(">7600<") && svg.contains(">19.60 ms<"));
    }
}
