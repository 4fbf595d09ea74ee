//! kubectl tabwriter: Go's `text/tabwriter` elastic-tabstop algorithm (as forked by
//! `github.com/liggitt/tabwriter` for `RememberWidths`) and kubectl's server-side Table printer
//! (cli-runtime `pkg/printers/tableprinter.go`), so `kubectl get` output is byte-identical.

use serde_json::Value;

/// Options mirroring cli-runtime `PrintOptions` fields that affect a server-side Table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableOptions {
    /// `-o wide`: also print columns with `priority != 0`.
    pub wide: bool,
    /// `-A` / `--all-namespaces`: prefix a `NAMESPACE` column.
    pub with_namespace: bool,
    /// `--show-labels`: append a `LABELS` column.
    pub show_labels: bool,
    /// `--no-headers`.
    pub no_headers: bool,
    /// `get all` / multi-type get: the name cell becomes `<kind>/<name>` (kind lowercased,
    /// e.g. `pod`, `deployment.apps`).
    pub show_kind: Option<String>,
}

/// Parameters of a Go tabwriter (`tabwriter.NewWriter(out, minwidth, tabwidth, padding, padchar, flags)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabConfig {
    /// Minimal cell width including padding.
    pub min_width: usize,
    /// Width of a tab character; only used when `pad_char` is `'\t'`.
    pub tab_width: usize,
    /// Padding added to a cell's text width before computing the column width.
    pub padding: usize,
    /// Character used for padding.
    pub pad_char: char,
}

/// cli-runtime `GetNewTabWriter`: minwidth 6, tabwidth 4, padding 3, `' '`, `RememberWidths`.
pub const KUBECTL_GET: TabConfig = TabConfig {
    min_width: 6,
    tab_width: 4,
    padding: 3,
    pad_char: ' ',
};

/// kubectl describe `tabbedString`: `out.Init(buf, 0, 8, 2, ' ', 0)`.
pub const KUBECTL_DESCRIBE: TabConfig = TabConfig {
    min_width: 0,
    tab_width: 8,
    padding: 2,
    pad_char: ' ',
};

/// rows after which kubectl flushes its table tabwriter (tableprinter.go `flushInterval`).
const FLUSH_INTERVAL: usize = 100;

#[derive(Debug, Clone)]
struct Cell {
    text: String,
    width: usize,
}

/// A streaming Go tabwriter. Text is buffered until `flush`, or until a line with a single cell
/// ends (Go flushes then, since such a line cannot affect later alignment).
#[derive(Debug, Clone)]
pub struct GoTabWriter {
    cfg: TabConfig,
    remember_widths: bool,
    max_widths: Vec<usize>,
    /// Buffered lines; the last one is the line being written.
    lines: Vec<Vec<Cell>>,
    cell: String,
    out: String,
}

impl GoTabWriter {
    /// A writer without `RememberWidths` (plain `text/tabwriter`).
    pub fn new(cfg: TabConfig) -> Self {
        Self {
            cfg,
            remember_widths: false,
            max_widths: Vec::new(),
            lines: vec![Vec::new()],
            cell: String::new(),
            out: String::new(),
        }
    }

    /// A writer with liggitt/tabwriter's `RememberWidths` flag: column widths never shrink
    /// across flushes (kubectl get flushes every 100 rows).
    pub fn remembering(cfg: TabConfig) -> Self {
        let mut w = Self::new(cfg);
        w.remember_widths = true;
        w
    }

    /// Buffer `text`; `\t` ends a cell, `\n` ends a line.
    pub fn write(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' | '\n' => {
                    let cell = std::mem::take(&mut self.cell);
                    let width = cell.chars().count();
                    let ncells = match self.lines.last_mut() {
                        Some(line) => {
                            line.push(Cell { text: cell, width });
                            line.len()
                        }
                        None => {
                            self.lines.push(vec![Cell { text: cell, width }]);
                            1
                        }
                    };
                    if ch == '\n' {
                        self.lines.push(Vec::new());
                        if ncells == 1 {
                            self.flush();
                        }
                    }
                }
                c => self.cell.push(c),
            }
        }
    }

    /// Format and emit everything buffered.
    pub fn flush(&mut self) {
        if !self.cell.is_empty() {
            let cell = std::mem::take(&mut self.cell);
            let width = cell.chars().count();
            if let Some(line) = self.lines.last_mut() {
                line.push(Cell { text: cell, width });
            }
        }
        let lines = std::mem::replace(&mut self.lines, vec![Vec::new()]);
        let mut widths = Vec::new();
        self.format(&lines, &mut widths, 0, lines.len());
    }

    /// Flush and return all output produced so far.
    pub fn finish(mut self) -> String {
        self.flush();
        self.out
    }

    fn format(&mut self, lines: &[Vec<Cell>], widths: &mut Vec<usize>, line0: usize, line1: usize) {
        let column = widths.len();
        let mut start = line0;
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A cell exists in this column: print the lines before the block, then size the block.
            self.write_lines(lines, widths, start, this);
            start = this;
            let mut width = self.cfg.min_width;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].width + self.cfg.padding);
                this += 1;
            }
            if self.remember_widths {
                if self.max_widths.len() < widths.len() {
                    let from = self.max_widths.len();
                    self.max_widths.extend_from_slice(&widths[from..]);
                }
                if self.max_widths.len() == widths.len() {
                    self.max_widths.push(width);
                } else if self.max_widths[column] > width {
                    width = self.max_widths[column];
                } else {
                    self.max_widths[column] = width;
                }
            }
            widths.push(width);
            self.format(lines, widths, start, this);
            widths.pop();
            start = this;
        }
        self.write_lines(lines, widths, start, line1);
    }

    fn write_lines(&mut self, lines: &[Vec<Cell>], widths: &[usize], line0: usize, line1: usize) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, cell) in line.iter().enumerate() {
                self.out.push_str(&cell.text);
                if let Some(&w) = widths.get(j) {
                    self.pad(cell.width, w);
                }
            }
            if i + 1 < lines.len() {
                self.out.push('\n');
            }
        }
    }

    fn pad(&mut self, text_width: usize, cell_width: usize) {
        if self.cfg.pad_char == '\t' {
            if self.cfg.tab_width == 0 {
                return;
            }
            let tw = self.cfg.tab_width;
            let cellw = cell_width.div_ceil(tw) * tw;
            let n = cellw.saturating_sub(text_width);
            for _ in 0..n.div_ceil(tw) {
                self.out.push('\t');
            }
            return;
        }
        for _ in 0..cell_width.saturating_sub(text_width) {
            self.out.push(self.cfg.pad_char);
        }
    }
}

/// Format tab-separated `text` in one go with a plain (non-remembering) Go tabwriter.
pub fn format_text(text: &str, cfg: TabConfig) -> String {
    let mut w = GoTabWriter::new(cfg);
    w.write(text);
    w.finish()
}

/// Align rows the way kubectl get does (minwidth 6, tabwidth 4, padding 3, `' '`); the last
/// column is never padded and every line ends with `'\n'`.
pub fn format_columns(rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.join("\t"));
        text.push('\n');
    }
    format_text(&text, KUBECTL_GET)
}

/// Print a `meta.k8s.io/v1` Table like `kubectl get` (cli-runtime `decorateTable` + `printTable`).
/// A table without rows prints nothing (kubectl then says "No resources found" on stderr).
pub fn print_table(table: &Value, opts: &TableOptions) -> String {
    let empty = Vec::new();
    let rows = table
        .get("rows")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    if rows.is_empty() {
        return String::new();
    }
    let defs = table
        .get("columnDefinitions")
        .and_then(Value::as_array)
        .unwrap_or(&empty);

    // (header, printed?) per column after decoration.
    let mut columns: Vec<(String, bool)> = Vec::new();
    if opts.with_namespace {
        columns.push(("NAMESPACE".to_string(), true));
    }
    let mut name_column = None;
    for (i, d) in defs.iter().enumerate() {
        let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
        let priority = d.get("priority").and_then(Value::as_i64).unwrap_or(0);
        columns.push((name.to_uppercase(), opts.wide || priority == 0));
        let is_name = d.get("format").and_then(Value::as_str) == Some("name")
            && d.get("type").and_then(Value::as_str) == Some("string");
        if is_name && name_column.is_none() {
            name_column = Some(i);
        }
    }
    if opts.show_labels {
        columns.push(("LABELS".to_string(), true));
    }
    let kind = opts
        .show_kind
        .as_deref()
        .filter(|k| !k.is_empty())
        .map(str::to_lowercase);

    let mut w = GoTabWriter::remembering(KUBECTL_GET);
    if !opts.no_headers {
        let headers: Vec<&str> = columns
            .iter()
            .filter(|(_, shown)| *shown)
            .map(|(h, _)| h.as_str())
            .collect();
        w.write(&headers.join("\t"));
        w.write("\n");
    }
    for (ri, row) in rows.iter().enumerate() {
        let meta = row.get("object").and_then(|o| o.get("metadata"));
        let mut cells: Vec<Option<String>> = Vec::new();
        if opts.with_namespace {
            cells.push(meta.map(|m| {
                m.get("namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            }));
        }
        let raw = row.get("cells").and_then(Value::as_array).unwrap_or(&empty);
        for (i, cell) in raw.iter().enumerate() {
            let mut text = cell_text(cell);
            if let (Some(k), Some(nc)) = (&kind, name_column) {
                if i == nc {
                    text = Some(format!("{k}/{}", text.unwrap_or_default()));
                }
            }
            cells.push(text);
        }
        if opts.show_labels {
            cells.push(meta.map(|m| format_labels(m.get("labels"))));
        }
        let mut line = String::new();
        let mut first = true;
        // Extra cells beyond the column definitions are dropped (issue 66379).
        for (cell, (_, shown)) in cells.iter().zip(columns.iter()) {
            if !shown {
                continue;
            }
            if !first {
                line.push('\t');
            }
            first = false;
            if let Some(text) = cell {
                line.push_str(&sanitize_cell(text));
            }
        }
        line.push('\n');
        w.write(&line);
        if (ri + 1) % FLUSH_INTERVAL == 0 {
            w.flush();
        }
    }
    w.finish()
}

/// `fmt.Sprint` of a decoded cell; `None` for JSON null (printed as an empty cell).
fn cell_text(cell: &Value) -> Option<String> {
    match cell {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(go_sprint(other)),
    }
}

/// `labels.FormatLabels`: `k=v` sorted by key, joined by `,`; `<none>` when empty.
pub fn format_labels(labels: Option<&Value>) -> String {
    let mut pairs: Vec<(String, String)> = labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.to_string(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// cli-runtime `appendCellValue`: a cell is cut at the first `\f`, `\n` or `\r` (tabwriter would
/// treat them as line breaks) and gets `...`; terminal escape bytes are neutralised.
fn sanitize_cell(val: &str) -> String {
    match val.find(['\n', '\r', '\u{c}']) {
        Some(idx) => format!("{}...", escape_terminal(&val[..idx])),
        None => escape_terminal(val),
    }
}

/// cli-runtime `WriteEscaped`: ESC becomes `^[` so objects cannot drive the terminal.
pub fn escape_terminal(s: &str) -> String {
    if !s.contains(['\u{1b}', '\r']) {
        return s.to_string();
    }
    s.replace('\u{1b}', "^[").replace('\r', "\\r")
}

/// Go `fmt.Sprint` / `%v` of a value decoded from JSON by Kubernetes' decoder (integers as
/// int64, other numbers as float64).
pub fn go_sprint(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                go_float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_sprint).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_sprint(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Go `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): shortest digits, exponent
/// form when the decimal exponent is < -4 or >= 6 (so `1e+06`, `123456`).
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, e.g. "1.5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    // Plain decimal notation with the same digits.
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exp + 1; // digits before the decimal point
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    if point <= 0 {
        s.push_str("0.");
        for _ in 0..(-point) {
            s.push('0');
        }
        s.push_str(&digits);
    } else {
        let p = usize::try_from(point).unwrap_or(0);
        if digits.len() <= p {
            s.push_str(&digits);
            for _ in digits.len()..p {
                s.push('0');
            }
        } else {
            s.push_str(&digits[..p]);
            s.push('.');
            s.push_str(&digits[p..]);
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    fn table(cols: &[(&str, i64)], rows: Vec<Value>) -> Value {
        let defs: Vec<Value> = cols
            .iter()
            .enumerate()
            .map(|(i, (n, p))| {
                json!({"name": n, "type": "string", "format": if i == 0 {"name"} else {""},
                       "description": "", "priority": p})
            })
            .collect();
        json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "columnDefinitions": defs, "rows": rows})
    }

    #[test]
    fn pods_wide_2_14() {
        let cols = [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1),
        ];
        let t = table(
            &cols,
            vec![
                json!({"cells": ["nginx-7cf55fb7bb-5fjcn", "1/1", "Running", 0, "37m",
                "10.244.169.136", "k8s-node2", "<none>", "<none>"],
                "object": {"metadata": {"name": "nginx-7cf55fb7bb-5fjcn", "namespace": "default"}}}),
            ],
        );
        let wide = TableOptions {
            wide: true,
            ..Default::default()
        };
        assert_eq!(
            print_table(&t, &wide),
            "NAME                     READY   STATUS    RESTARTS   AGE   IP               NODE        NOMINATED NODE   READINESS GATES\n\
             nginx-7cf55fb7bb-5fjcn   1/1     Running   0          37m   10.244.169.136   k8s-node2   <none>           <none>\n"
        );
        assert_eq!(
            print_table(&t, &TableOptions::default()),
            "NAME                     READY   STATUS    RESTARTS   AGE\n\
             nginx-7cf55fb7bb-5fjcn   1/1     Running   0          37m\n"
        );
    }

    #[test]
    fn services_2_19() {
        let rows = vec![
            row(&[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ]),
            row(&[
                "kubernetes",
                "ClusterIP",
                "10.96.0.1",
                "<none>",
                "443/TCP",
                "114d",
            ]),
            row(&[
                "web",
                "NodePort",
                "10.96.45.12",
                "<none>",
                "80:30707/TCP",
                "62m",
            ]),
            row(&[
                "web-lb",
                "LoadBalancer",
                "10.96.200.9",
                "<pending>",
                "80:31380/TCP,443:31390/TCP",
                "22s",
            ]),
            row(&["headless", "ClusterIP", "None", "<none>", "80/TCP", "3m11s"]),
            row(&[
                "ext",
                "ExternalName",
                "<none>",
                "www.example.com",
                "<none>",
                "5h2m",
            ]),
        ];
        assert_eq!(
            format_columns(&rows),
            "NAME         TYPE           CLUSTER-IP    EXTERNAL-IP       PORT(S)                      AGE\n\
             kubernetes   ClusterIP      10.96.0.1     <none>            443/TCP                      114d\n\
             web          NodePort       10.96.45.12   <none>            80:30707/TCP                 62m\n\
             web-lb       LoadBalancer   10.96.200.9   <pending>         80:31380/TCP,443:31390/TCP   22s\n\
             headless     ClusterIP      None          <none>            80/TCP                       3m11s\n\
             ext          ExternalName   <none>        www.example.com   <none>                       5h2m\n"
        );
    }

    #[test]
    fn deployments_2_20() {
        let t = table(
            &[
                ("Name", 0),
                ("Ready", 0),
                ("Up-to-date", 0),
                ("Available", 0),
                ("Age", 0),
                ("Containers", 1),
                ("Images", 1),
                ("Selector", 1),
            ],
            vec![
                json!({"cells": ["web", "3/3", 3, 3, "5m", "nginx", "nginx", "app=web"],
                        "object": {"metadata": {"name": "web"}}}),
            ],
        );
        assert_eq!(
            print_table(&t, &TableOptions::default()),
            "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n\
             web    3/3     3            3           5m\n"
        );
    }

    #[test]
    fn endpoints_2_21_2_23() {
        let rows = vec![
            row(&["NAME", "ENDPOINTS", "AGE"]),
            row(&[
                "web",
                "10.244.1.5:8080,10.244.2.7:8080,10.244.2.8:8080 + 1 more...",
                "62m",
            ]),
        ];
        assert_eq!(
            format_columns(&rows),
            "NAME   ENDPOINTS                                                     AGE\n\
             web    10.244.1.5:8080,10.244.2.7:8080,10.244.2.8:8080 + 1 more...   62m\n"
        );
    }

    #[test]
    fn ingress_2_24_with_empty_cell() {
        let t = table(
            &[
                ("Name", 0),
                ("Class", 0),
                ("Hosts", 0),
                ("Address", 0),
                ("Ports", 0),
                ("Age", 0),
            ],
            vec![
                json!({"cells": ["example", "nginx", "foo.bar.com", "192.168.49.2", "80", "5m"]}),
                json!({"cells": ["tls", "nginx", "*", "", "80, 443", "1m"]}),
            ],
        );
        assert_eq!(
            print_table(&t, &TableOptions::default()),
            "NAME      CLASS   HOSTS         ADDRESS        PORTS     AGE\n\
             example   nginx   foo.bar.com   192.168.49.2   80        5m\n\
             tls       nginx   *                            80, 443   1m\n"
        );
    }

    #[test]
    fn namespace_labels_kind_and_no_headers() {
        let t = table(
            &[("Name", 0), ("Age", 0)],
            vec![
                json!({"cells": ["web", "5m"], "object": {"metadata": {"name": "web",
                    "namespace": "default", "labels": {"tier": "fe", "app": "web"}}}}),
                json!({"cells": ["db", null], "object": {"metadata": {"name": "db", "namespace": "kube-system"}}}),
            ],
        );
        let opts = TableOptions {
            with_namespace: true,
            show_labels: true,
            show_kind: Some("Pod".into()),
            ..Default::default()
        };
        assert_eq!(
            print_table(&t, &opts),
            "NAMESPACE     NAME      AGE   LABELS\n\
             default       pod/web   5m    app=web,tier=fe\n\
             kube-system   pod/db          <none>\n"
        );
        let no_headers = TableOptions {
            no_headers: true,
            ..Default::default()
        };
        // An empty last cell still pads the column before it (kubectl prints those spaces).
        assert_eq!(print_table(&t, &no_headers), "web   5m\ndb    \n");
    }

    #[test]
    fn empty_table_prints_nothing() {
        let t = table(&[("Name", 0)], vec![]);
        assert_eq!(print_table(&t, &TableOptions::default()), "");
        assert_eq!(format_columns(&[]), "");
    }

    #[test]
    fn cells_with_newlines_are_cut() {
        assert_eq!(sanitize_cell("a\nb"), "a...");
        assert_eq!(sanitize_cell("x\u{1b}[31m"), "x^[[31m");
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(100.0), "100");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(-2.5e-7), "-2.5e-07");
        assert_eq!(go_sprint(&json!([1, "a", true])), "[1 a true]");
    }
}
