//! kubectl jsonpath: `-o jsonpath=TEMPLATE`, following client-go `util/jsonpath` (parser.go,
//! jsonpath.go) and cli-runtime `pkg/printers/jsonpath.go` so output and errors match kubectl.

use serde_json::Value;

use super::tabwriter::{go_float, go_sprint};

/// Errors as kubectl words them, without the leading `error: ` its CheckErr adds.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JsonPathError {
    /// The template does not parse (kubectl `JSONPathPrintFlags.ToPrinter`).
    #[error("error parsing jsonpath {template}, {message}")]
    Parse { template: String, message: String },
    /// Evaluation failed (cli-runtime `JSONPathPrinter.PrintObj`).
    #[error("error executing jsonpath {quoted}: Error executing template: {message}. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{template}\n\tobject given to jsonpath engine was:\n\t\t{object}\n\n", quoted = go_quote(template))]
    Execute {
        template: String,
        message: String,
        /// The data rendered with Go's `%#v`.
        object: String,
    },
}

impl JsonPathError {
    /// The bare client-go message (e.g. `array index out of bounds: index 0, length 0`).
    pub fn message(&self) -> &str {
        match self {
            Self::Parse { message, .. } | Self::Execute { message, .. } => message,
        }
    }
}

/// Render `template` against `data`. kubectl get sets `allow_missing` (its
/// `--allow-missing-template-keys` defaults to true), so absent keys print nothing.
pub fn render(template: &str, data: &Value, allow_missing: bool) -> Result<String, JsonPathError> {
    let segs = parse(template).map_err(|message| JsonPathError::Parse {
        template: template.to_string(),
        message,
    })?;
    let ev = Eval { allow_missing };
    let (results, _, _) = ev
        .exec(&segs, data, 0)
        .map_err(|message| JsonPathError::Execute {
            template: template.to_string(),
            message,
            object: go_sharp_v(data),
        })?;
    let mut out = String::new();
    for set in &results {
        for (i, v) in set.iter().enumerate() {
            match v {
                Value::Object(_) | Value::Array(_) => out.push_str(&go_json(v)),
                other => out.push_str(&go_sprint(other)),
            }
            if i + 1 != set.len() {
                out.push(' ');
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Parser

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Param {
    value: i64,
    known: bool,
    derived: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Field(String),
    Array([Param; 3]),
    Filter {
        left: Vec<Node>,
        right: Vec<Node>,
        op: String,
    },
    Int(i64),
    Float(f64),
    Bool(bool),
    Wildcard,
    Recursive,
    Union(Vec<Vec<Node>>),
    Identifier(String),
}

/// A top-level piece of the template: literal text or one `{...}` action.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Text(String),
    Action(Vec<Node>),
}

fn parse(text: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            segs.push(Seg::Text(rest[..open].to_string()));
        }
        let mut p = ActionParser {
            src: &rest[open + 1..],
            pos: 0,
            nodes: Vec::new(),
        };
        p.parse_inside()?;
        segs.push(Seg::Action(p.nodes));
        rest = &rest[open + 1 + p.pos..];
    }
    if !rest.is_empty() {
        segs.push(Seg::Text(rest.to_string()));
    }
    Ok(segs)
}

/// Parse the inside of one action given without braces (client-go `parseAction`).
fn parse_action(text: &str) -> Result<Vec<Node>, String> {
    let wrapped = format!("{{{text}}}");
    match parse(&wrapped)?.into_iter().next() {
        Some(Seg::Action(nodes)) => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

struct ActionParser<'a> {
    src: &'a str,
    /// Byte offset into `src`; after parsing, just past the closing `}`.
    pos: usize,
    nodes: Vec<Node>,
}

fn is_terminator(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
        ),
    }
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

impl ActionParser<'_> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn parse_inside(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                return Ok(());
            }
            if rest.starts_with("[?(") {
                self.pos += 3;
                self.parse_filter()?;
                continue;
            }
            if rest.starts_with("..") {
                if self.nodes.last() == Some(&Node::Recursive) {
                    return Err("invalid multiple recursive descent".into());
                }
                self.pos += 2;
                self.nodes.push(Node::Recursive);
                if self.peek().is_some_and(is_alnum) {
                    self.parse_field();
                }
                continue;
            }
            let start = self.pos;
            match self.next() {
                None | Some('\r') | Some('\n') => return Err("unclosed action".into()),
                Some(' ') | Some('@') | Some('$') => {}
                Some('[') => self.parse_array()?,
                Some(q @ ('"' | '\'')) => self.parse_quote(start, q)?,
                Some('.') => self.parse_field(),
                Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                    self.pos = start;
                    self.parse_number()?;
                }
                Some(c) if is_alnum(c) => {
                    self.pos = start;
                    self.parse_identifier();
                }
                Some(c) => {
                    return Err(format!(
                        "unrecognized character in action: U+{:04X} '{c}'",
                        u32::from(c)
                    ))
                }
            }
        }
    }

    fn parse_field(&mut self) {
        let start = self.pos;
        loop {
            let c = self.peek();
            if c == Some('\\') {
                self.next();
                self.next();
            } else if is_terminator(c) {
                break;
            } else {
                self.next();
            }
        }
        let value = &self.src[start..self.pos];
        if value == "*" {
            self.nodes.push(Node::Wildcard);
        } else {
            self.nodes.push(Node::Field(value.replace('\\', "")));
        }
    }

    fn parse_identifier(&mut self) {
        let start = self.pos;
        while !is_terminator(self.peek()) {
            self.next();
        }
        let value = &self.src[start..self.pos];
        match value {
            "true" => self.nodes.push(Node::Bool(true)),
            "false" => self.nodes.push(Node::Bool(false)),
            _ => self.nodes.push(Node::Identifier(value.to_string())),
        }
    }

    fn parse_number(&mut self) -> Result<(), String> {
        let start = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        while matches!(self.peek(), Some(c) if c == '.' || c.is_ascii_digit()) {
            self.next();
        }
        let value = &self.src[start..self.pos];
        if let Ok(i) = value.parse::<i64>() {
            self.nodes.push(Node::Int(i));
        } else if let Ok(f) = value.parse::<f64>() {
            self.nodes.push(Node::Float(f));
        } else {
            return Err(format!("cannot parse number {value}"));
        }
        Ok(())
    }

    fn parse_quote(&mut self, start: usize, quote: char) -> Result<(), String> {
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated quoted string".into()),
                Some(c) if c == quote && self.src.as_bytes().get(self.pos - 2) != Some(&b'\\') => {
                    break
                }
                Some(_) => {}
            }
        }
        let raw = &self.src[start..self.pos];
        let s = unquote(raw).map_err(|e| format!("unquote string {raw} error {e}"))?;
        self.nodes.push(Node::Text(s));
        Ok(())
    }

    fn parse_array(&mut self) -> Result<(), String> {
        let start = self.pos;
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated array".into()),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let mut text = &self.src[start..self.pos - 1];
        if text == "*" {
            text = ":";
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() > 1 {
            let mut union = Vec::new();
            for part in parts {
                union.push(parse_action(&format!("[{}]", part.trim_matches(' ')))?);
            }
            self.nodes.push(Node::Union(union));
            return Ok(());
        }
        if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
            let key = &text[1..text.len() - 1];
            if !key.contains('\'') {
                let nodes = parse_action(&format!(".{key}"))?;
                self.nodes.extend(nodes);
                return Ok(());
            }
        }
        let params = parse_slice(text).ok_or_else(|| format!("invalid array index {text}"))??;
        self.nodes.push(Node::Array(params));
        Ok(())
    }

    fn parse_filter(&mut self) -> Result<(), String> {
        let start = self.pos;
        let mut begin = false;
        let mut end = false;
        let mut pair = '"';
        loop {
            match self.next() {
                None | Some('\n') => return Err("unterminated filter".into()),
                Some(q @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = q;
                        continue;
                    }
                    if self.src.as_bytes().get(self.pos - 2) != Some(&b'\\') && q == pair {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err("unclosed array expect ]".into());
        }
        let text = &self.src[start..self.pos - 2];
        match split_filter(text) {
            None => {
                let left = parse_action(text)?;
                self.nodes.push(Node::Filter {
                    left,
                    right: Vec::new(),
                    op: "exists".into(),
                });
            }
            Some((l, op, r)) => {
                let left = parse_action(l)?;
                let right = parse_action(r)?;
                self.nodes.push(Node::Filter {
                    left,
                    right,
                    op: op.to_string(),
                });
            }
        }
        Ok(())
    }
}

/// client-go's `^([^!<>=]+)([!<>=~]+)(.+?)$` on a filter body.
fn split_filter(text: &str) -> Option<(&str, &str, &str)> {
    let i = text.find(['!', '<', '>', '='])?;
    if i == 0 {
        return None;
    }
    let mut j = i;
    for (k, c) in text[i..].char_indices() {
        if matches!(c, '!' | '<' | '>' | '=' | '~') {
            j = i + k + c.len_utf8();
        } else {
            break;
        }
    }
    if j == text.len() {
        j -= 1; // the right-hand side needs at least one character
    }
    if j <= i || text[j..].contains('\n') {
        return None;
    }
    Some((&text[..i], &text[i..j], &text[j..]))
}

/// client-go `sliceOperatorRex` and parameter defaults. Outer `None`: no match.
fn parse_slice(text: &str) -> Option<Result<[Param; 3], String>> {
    let groups: Vec<&str> = text.split(':').collect();
    if groups.len() > 3 {
        return None;
    }
    let valid = |s: &str| {
        let d = s.strip_prefix('-').unwrap_or(s);
        d.chars().all(|c| c.is_ascii_digit())
    };
    if !groups.iter().all(|g| valid(g)) {
        return None;
    }
    let mut params = [Param::default(); 3];
    for i in 0..3 {
        match groups.get(i) {
            Some(g) if !g.is_empty() => match g.parse::<i64>() {
                Ok(v) => {
                    params[i] = Param {
                        value: v,
                        known: true,
                        derived: false,
                    }
                }
                Err(_) => return Some(Err(format!("array index {g} is not a number"))),
            },
            // "[1:]" has an empty but present end: unknown.
            Some(_) if i > 0 => {}
            _ if i == 1 => {
                params[1] = Param {
                    value: params[0].value + 1,
                    known: true,
                    derived: true,
                }
            }
            _ => {}
        }
    }
    Some(Ok(params))
}

/// client-go `UnquoteExtend`: Go string unquoting for `"..."` and `'...'`.
fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    let quote = s.chars().next().ok_or_else(bad)?;
    if s.len() < 2 || !s.ends_with(quote) || (quote != '"' && quote != '\'') {
        return Err(bad());
    }
    let body = &s[1..s.len() - 1];
    let mut out = String::new();
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            return Err(bad());
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = chars.next().ok_or_else(bad)?;
        match e {
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '\'' | '"' if e == quote => out.push(e),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| chars.next()).collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                if hex.len() != n {
                    return Err(bad());
                }
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            '0'..='7' => {
                let mut oct = String::from(e);
                for _ in 0..2 {
                    oct.push(chars.next().ok_or_else(bad)?);
                }
                let v = u32::from_str_radix(&oct, 8).map_err(|_| bad())?;
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctrl {
    None,
    Range,
    End,
}

struct Eval {
    allow_missing: bool,
}

type Results = Vec<Vec<Value>>;

impl Eval {
    /// Evaluate segments; returns the result sets, how many segments were consumed and whether
    /// an `{end}` stopped evaluation (client-go `FindResults`).
    fn exec(
        &self,
        segs: &[Seg],
        data: &Value,
        in_range: usize,
    ) -> Result<(Results, usize, bool), String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < segs.len() {
            match &segs[i] {
                Seg::Text(t) => out.push(vec![Value::String(t.clone())]),
                Seg::Action(nodes) => {
                    let (results, ctrl) = self.eval_list(vec![data.clone()], nodes)?;
                    match ctrl {
                        Ctrl::End => {
                            if in_range == 0 {
                                return Err("not in range, nothing to end".into());
                            }
                            return Ok((out, i + 1, true));
                        }
                        Ctrl::Range => {
                            let body = &segs[i + 1..];
                            let mut consumed = body.len();
                            if results.is_empty() {
                                let (_, c, _) = self.exec(body, &Value::Null, in_range + 1)?;
                                consumed = c;
                            }
                            for v in &results {
                                let (r, c, _) = self.exec(body, v, in_range + 1)?;
                                out.extend(r);
                                consumed = c;
                            }
                            i += 1 + consumed;
                            continue;
                        }
                        Ctrl::None => out.push(results),
                    }
                }
            }
            i += 1;
        }
        Ok((out, segs.len(), false))
    }

    fn eval_list(&self, input: Vec<Value>, nodes: &[Node]) -> Result<(Vec<Value>, Ctrl), String> {
        let mut cur = input;
        let mut ctrl = Ctrl::None;
        for node in nodes {
            cur = match node {
                Node::Identifier(name) => match name.as_str() {
                    "range" => {
                        ctrl = Ctrl::Range;
                        cur
                    }
                    "end" => {
                        ctrl = Ctrl::End;
                        Vec::new()
                    }
                    other => return Err(format!("unrecognized identifier {other}")),
                },
                other => self.walk(cur, other)?,
            };
        }
        Ok((cur, ctrl))
    }

    fn walk(&self, input: Vec<Value>, node: &Node) -> Result<Vec<Value>, String> {
        match node {
            Node::Text(t) => Ok(vec![Value::String(t.clone())]),
            Node::Int(i) => Ok(input.iter().map(|_| Value::from(*i)).collect()),
            Node::Float(f) => Ok(input.iter().map(|_| Value::from(*f)).collect()),
            Node::Bool(b) => Ok(input.iter().map(|_| Value::Bool(*b)).collect()),
            Node::Field(key) => self.eval_field(input, key),
            Node::Array(params) => eval_array(input, *params),
            Node::Filter { left, right, op } => self.eval_filter(input, left, right, op),
            Node::Wildcard => Ok(input.iter().flat_map(children).collect()),
            Node::Recursive => Ok(eval_recursive(&input)),
            Node::Union(lists) => {
                let mut out = Vec::new();
                for list in lists {
                    out.extend(self.eval_list(input.clone(), list)?.0);
                }
                Ok(out)
            }
            Node::Identifier(name) => Err(format!("unrecognized identifier {name}")),
        }
    }

    fn eval_field(&self, input: Vec<Value>, key: &str) -> Result<Vec<Value>, String> {
        if input.is_empty() {
            return Ok(input);
        }
        let results: Vec<Value> = input
            .iter()
            .filter_map(|v| v.as_object().and_then(|m| m.get(key)).cloned())
            .collect();
        if results.is_empty() && !self.allow_missing {
            return Err(format!("{key} is not found"));
        }
        Ok(results)
    }

    fn eval_filter(
        &self,
        input: Vec<Value>,
        left: &[Node],
        right: &[Node],
        op: &str,
    ) -> Result<Vec<Value>, String> {
        let mut results = Vec::new();
        for value in &input {
            let Some(items) = value.as_array() else {
                return Err(format!(
                    "{} is not array or slice and cannot be filtered",
                    go_sprint(value)
                ));
            };
            for item in items {
                let lefts = self.eval_list(vec![item.clone()], left);
                if op == "exists" {
                    if lefts.is_ok_and(|(l, _)| !l.is_empty()) {
                        results.push(item.clone());
                    }
                    continue;
                }
                let (lefts, _) = lefts?;
                let l = match lefts.as_slice() {
                    [] => continue,
                    [one] => one,
                    _ => return Err("can only compare one element at a time".into()),
                };
                let (rights, _) = self.eval_list(vec![item.clone()], right)?;
                let r = match rights.as_slice() {
                    [] => continue,
                    [one] => one,
                    _ => return Err("can only compare one element at a time".into()),
                };
                let pass = match op {
                    "<" => less(l, r)?,
                    ">" => !(less(l, r)? || equal(l, r)?),
                    "==" => equal(l, r)?,
                    "!=" => !equal(l, r)?,
                    "<=" => less(l, r)? || equal(l, r)?,
                    ">=" => !less(l, r)?,
                    other => return Err(format!("unrecognized filter operator {other}")),
                };
                if pass {
                    results.push(item.clone());
                }
            }
        }
        Ok(results)
    }
}

/// Members of a map (sorted by key, Go's order is random), array or string (its bytes).
fn children(v: &Value) -> Vec<Value> {
    match v {
        Value::Object(m) => m.values().cloned().collect(),
        Value::Array(a) => a.clone(),
        Value::String(s) => s.bytes().map(Value::from).collect(),
        _ => Vec::new(),
    }
}

fn eval_recursive(input: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for v in input {
        let kids = children(v);
        if !kids.is_empty() {
            out.push(v.clone());
            out.extend(eval_recursive(&kids));
        }
    }
    out
}

fn eval_array(input: Vec<Value>, node_params: [Param; 3]) -> Result<Vec<Value>, String> {
    let mut result = Vec::new();
    for value in &input {
        if value.is_null() {
            continue;
        }
        let Some(items) = value.as_array() else {
            return Err(format!("{} is not array or slice", go_type(value)));
        };
        let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
        let mut p = node_params;
        if !p[0].known {
            p[0].value = 0;
        }
        if p[0].value < 0 {
            p[0].value += len;
        }
        if !p[1].known {
            p[1].value = len;
        }
        if p[1].value < 0 || (p[1].value == 0 && p[1].derived) {
            p[1].value += len;
        }
        if p[1].value == p[0].value {
            return Ok(result);
        }
        if p[0].value >= len || p[0].value < 0 {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                p[0].value
            ));
        }
        if p[1].value > len || p[1].value < 0 {
            return Err(format!(
                "array index out of bounds: index {}, length {len}",
                p[1].value - 1
            ));
        }
        if p[0].value > p[1].value {
            return Err(format!(
                "starting index {} is greater than ending index {}",
                p[0].value, p[1].value
            ));
        }
        let step = if p[2].known {
            if p[2].value <= 0 {
                return Err("step must be > 0".into());
            }
            usize::try_from(p[2].value).unwrap_or(1)
        } else {
            1
        };
        let from = usize::try_from(p[0].value).unwrap_or(0);
        let to = usize::try_from(p[1].value).unwrap_or(0);
        result.extend(items[from..to].iter().step_by(step).cloned());
    }
    Ok(result)
}

/// Go's `reflect.Type` name for a value decoded into `interface{}` by Kubernetes.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[derive(PartialEq, PartialOrd)]
enum Basic<'a> {
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

fn basic(v: &Value) -> Option<Basic<'_>> {
    match v {
        Value::Bool(b) => Some(Basic::Bool(*b)),
        Value::Number(n) if n.is_f64() => n.as_f64().map(Basic::Float),
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .map(Basic::Int),
        Value::String(s) => Some(Basic::Str(s)),
        _ => None,
    }
}

/// Go text/template `eq` on two values.
fn equal(l: &Value, r: &Value) -> Result<bool, String> {
    let (Some(a), Some(b)) = (basic(l), basic(r)) else {
        return Err("invalid type for comparison".into());
    };
    if std::mem::discriminant(&a) != std::mem::discriminant(&b) {
        return Err("incompatible types for comparison".into());
    }
    Ok(a == b)
}

/// Go text/template `lt` on two values.
fn less(l: &Value, r: &Value) -> Result<bool, String> {
    let (Some(a), Some(b)) = (basic(l), basic(r)) else {
        return Err("invalid type for comparison".into());
    };
    if matches!(a, Basic::Bool(_)) || matches!(b, Basic::Bool(_)) {
        return Err("invalid type for comparison".into());
    }
    if std::mem::discriminant(&a) != std::mem::discriminant(&b) {
        return Err("incompatible types for comparison".into());
    }
    Ok(a < b)
}

// ---------------------------------------------------------------------------------------------
// Go formatting helpers

/// Go `encoding/json.Marshal`: compact, map keys sorted, `<`, `>`, `&` escaped as `\u00XX`.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|_| n.is_f64()) {
                out.push_str(&go_json_float(f));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => write_json_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, x);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, x);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go json float encoding: like `%v` but exponent form only below 1e-6 or from 1e21.
fn go_json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{f:e}");
        return match s.split_once('e') {
            Some((m, e)) => {
                let exp: i32 = e.parse().unwrap_or(0);
                let sign = if exp < 0 { '-' } else { '+' };
                format!("{m}e{sign}{}", exp.abs())
            }
            None => s,
        };
    }
    let s = format!("{f}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// Go `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go `%#v` of JSON decoded into `interface{}`.
fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.is_f64() => go_float(n.as_f64().unwrap_or(0.0)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "map[string]interface {{}}{{{}}}",
            m.iter()
                .map(|(k, x)| format!("{}:{}", go_quote(k), go_sharp_v(x)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pods() -> Value {
        json!({"kind": "List", "apiVersion": "v1", "items": [
            {"metadata": {"name": "web-1", "labels": {"app": "web", "kubernetes.io/hostname": "n1"}},
             "spec": {"nodeName": "n1", "ports": [{"port": 80, "nodePort": 30080}]},
             "status": {"podIP": "10.244.1.5", "phase": "Running", "ready": true, "ratio": 0.5}},
            {"metadata": {"name": "web-2", "labels": {"app": "web"}},
             "spec": {"nodeName": "n2"},
             "status": {"podIP": "10.244.2.7", "phase": "Pending", "ready": false}}
        ]})
    }

    fn r(t: &str) -> String {
        render(t, &pods(), true).unwrap()
    }

    #[test]
    fn fields_and_indexes() {
        assert_eq!(r("{.kind}"), "List");
        assert_eq!(r("{.items[0].status.podIP}"), "10.244.1.5");
        assert_eq!(r("{.items[-1].metadata.name}"), "web-2");
        assert_eq!(r("{.items[0].spec.ports[0].nodePort}"), "30080");
        assert_eq!(r("{.items[0].status.ready}"), "true");
        assert_eq!(r("{.items[0].status.ratio}"), "0.5");
        assert_eq!(r("{.items[0].metadata.labels.app}"), "web");
    }

    #[test]
    fn wildcard_and_slices_join_with_space() {
        assert_eq!(r("{.items[*].metadata.name}"), "web-1 web-2");
        assert_eq!(r("{.items[0:2].status.phase}"), "Running Pending");
        assert_eq!(r("{.items[1:].metadata.name}"), "web-2");
        assert_eq!(r("{.items[0,1].spec.nodeName}"), "n1 n2");
        // A quoted key is re-parsed as a dotted path, as client-go does.
        assert_eq!(r("{.items[*]['metadata.name']}"), "web-1 web-2");
        assert_eq!(r("{.items[0]['status']['podIP']}"), "10.244.1.5");
    }

    #[test]
    fn escaped_dots_in_keys() {
        assert_eq!(
            r("{.items[0].metadata.labels.kubernetes\\.io/hostname}"),
            "n1"
        );
    }

    #[test]
    fn range_and_literals() {
        assert_eq!(
            r("{range .items[*]}{.metadata.name}{\"\\t\"}{.status.podIP}{\"\\n\"}{end}"),
            "web-1\t10.244.1.5\nweb-2\t10.244.2.7\n"
        );
        assert_eq!(
            r("names: {.items[*].metadata.name}!"),
            "names: web-1 web-2!"
        );
        assert_eq!(
            r("{range .items[*]}[{.metadata.name}]{end}done"),
            "[web-1][web-2]done"
        );
        assert_eq!(r("{range .nothing[*]}x{end}after"), "after");
    }

    #[test]
    fn filters() {
        assert_eq!(
            r("{.items[?(@.metadata.name==\"web-2\")].status.podIP}"),
            "10.244.2.7"
        );
        assert_eq!(
            r("{.items[?(@.spec.ports[0].port==80)].metadata.name}"),
            "web-1"
        );
        assert_eq!(r("{.items[?(@.spec.ports)].metadata.name}"), "web-1");
        assert_eq!(
            r("{.items[?(@.status.phase!='Running')].metadata.name}"),
            "web-2"
        );
    }

    #[test]
    fn recursive_descent() {
        assert_eq!(r("{..podIP}"), "10.244.1.5 10.244.2.7");
    }

    #[test]
    fn maps_and_arrays_print_as_go_json() {
        assert_eq!(
            r("{.items[0].metadata.labels}"),
            r#"{"app":"web","kubernetes.io/hostname":"n1"}"#
        );
        assert_eq!(
            r("{.items[0].spec.ports}"),
            r#"[{"nodePort":30080,"port":80}]"#
        );
        assert_eq!(
            go_json(&json!({"a": "<&>"})),
            r#"{"a":"\u003c\u0026\u003e"}"#
        );
    }

    #[test]
    fn missing_keys() {
        assert_eq!(r("{.items[0].status.hostIP}"), "");
        let err = render("{.items[0].status.hostIP}", &pods(), false).unwrap_err();
        assert_eq!(err.message(), "hostIP is not found");
        assert!(err.to_string().starts_with(
            "error executing jsonpath \"{.items[0].status.hostIP}\": Error executing template: hostIP is not found. Printing more information for debugging the template:\n\ttemplate was:\n\t\t{.items[0].status.hostIP}\n\tobject given to jsonpath engine was:\n\t\tmap[string]interface {}{\"apiVersion\":\"v1\", "
        ));
    }

    #[test]
    fn errors() {
        let empty = json!({"items": []});
        let err = render("{.items[0].x}", &empty, true).unwrap_err();
        assert_eq!(
            err.message(),
            "array index out of bounds: index 0, length 0"
        );
        let err = render("{.items[0]", &empty, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "error parsing jsonpath {.items[0], unclosed action"
        );
        let err = render("{.kind[0]}", &pods(), true).unwrap_err();
        assert_eq!(err.message(), "string is not array or slice");
        let err = render("{end}", &pods(), true).unwrap_err();
        assert_eq!(err.message(), "not in range, nothing to end");
        let err = render("{%}", &pods(), true).unwrap_err();
        assert_eq!(
            err.message(),
            "unrecognized character in action: U+0025 '%'"
        );
    }
}
