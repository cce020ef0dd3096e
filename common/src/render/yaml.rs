//! YAML text of a JSON value, block style, for manifests read by YAML 1.1
//! parsers (Kubernetes, PyYAML): a string is written plain only when no
//! YAML reader could take it for something else — not a timestamp
//! (`2026-11-26T18:00:00Z`), a number, a sexagesimal (`1:20`), a boolean of
//! YAML 1.1 (`yes`, `off`, `y`) or a null — and single- or double-quoted
//! otherwise. Keys are written the same way. Maps keep the value's order.

use serde_json::Value;

/// Words YAML 1.1 reads as booleans or null.
const SPECIAL_WORDS: &[&str] = &[
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
];

/// Whether `s` can be written as a plain scalar that every YAML reader
/// takes for this string.
fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // numbers, timestamps and sexagesimals start with a digit, a sign or a
    // dot; `-` alone, or before a space, is a sequence entry
    let start_ok = first.is_ascii_alphabetic()
        || first == '/'
        || first == '$'
        || (first == '-'
            && s[1..]
                .chars()
                .next()
                .is_some_and(|c| c == '-' || c.is_ascii_alphabetic()));
    start_ok
        && !SPECIAL_WORDS.contains(&s.to_ascii_lowercase().as_str())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _./$()=:@,+-[]'\"%*".contains(c))
        && !s.ends_with(' ')
        && !s.ends_with(':')
        && !s.contains(": ")
        && !s.contains(" #")
}

/// A string as a YAML scalar.
pub fn scalar(s: &str) -> String {
    if plain_ok(s) {
        s.to_owned()
    } else if s.chars().all(|c| !c.is_control()) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        // JSON's string escapes are YAML's double-quoted ones
        serde_json::to_string(s).expect("a string serializes")
    }
}

fn value_scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some("null".into()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(scalar(s)),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(o) if o.is_empty() => Some("{}".into()),
        _ => None,
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a non-empty map or sequence whose lines start at `indent`.
fn block(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                pad(out, indent);
                out.push_str(&scalar(k));
                out.push(':');
                match value_scalar(v) {
                    Some(s) => {
                        out.push(' ');
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => {
                        out.push('\n');
                        // a sequence under a key sits at the key's indent
                        let inner = if v.is_array() { indent } else { indent + 2 };
                        block(v, inner, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                pad(out, indent);
                out.push('-');
                match value_scalar(item) {
                    Some(s) => {
                        out.push(' ');
                        out.push_str(&s);
                        out.push('\n');
                    }
                    None => {
                        // the item's first line goes after the `- `
                        let mut inner = String::new();
                        block(item, indent + 2, &mut inner);
                        out.push(' ');
                        out.push_str(&inner[indent + 2..]);
                    }
                }
            }
        }
        other => {
            pad(out, indent);
            out.push_str(&value_scalar(other).unwrap_or_default());
            out.push('\n');
        }
    }
}

/// The YAML document of `v`.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    match value_scalar(v) {
        Some(s) => {
            out.push_str(&s);
            out.push('\n');
        }
        None => block(v, 0, &mut out),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_that_read_as_other_types_are_quoted() {
        for (s, want) in [
            ("2026-11-26T18:00:00Z", "'2026-11-26T18:00:00Z'"),
            ("2026-11-26", "'2026-11-26'"),
            ("1:20", "'1:20'"),
            ("9090", "'9090'"),
            ("10m", "'10m'"),
            ("0.0.0.0:$(METRICS_PORT)", "'0.0.0.0:$(METRICS_PORT)'"),
            ("1e3", "'1e3'"),
            (".inf", "'.inf'"),
            ("-1", "'-1'"),
            ("yes", "'yes'"),
            ("Off", "'Off'"),
            ("y", "'y'"),
            ("null", "'null'"),
            ("~", "'~'"),
            ("", "''"),
            ("a: b", "'a: b'"),
            ("x #y", "'x #y'"),
            ("it's", "it's"),
            ("'q'", "'''q'''"),
            ("two\nlines", "\"two\\nlines\""),
            ("- x", "'- x'"),
            // plain where nothing else could be meant
            ("--start-at", "--start-at"),
            ("run", "run"),
            ("$(JOB_COMPLETION_INDEX)/1", "$(JOB_COMPLETION_INDEX)/1"),
            ("logLevel=\"$(LOG_LEVEL)\"", "logLevel=\"$(LOG_LEVEL)\""),
            ("/usr/local/bin/my-swarm", "/usr/local/bin/my-swarm"),
            ("batch/v1", "batch/v1"),
        ] {
            assert_eq!(scalar(s), want, "{s:?}");
        }
    }

    #[test]
    fn blocks_and_what_a_yaml_reader_makes_of_them() {
        let v = json!({
            "kind": "Job",
            "spec": {
                "args": ["--start-at", "2026-11-26T18:00:00Z", "--seed", "1"],
                "env": [{"name": "A", "value": "on"}, {"name": "B", "value": "x"}],
                "empty": {},
                "none": [],
                "n": 3,
                "ok": true,
                "nested": [[1, 2], {"a": {"b": "c"}}]
            }
        });
        let text = to_string(&v);
        assert_eq!(
            text,
            "kind: Job\nspec:\n  args:\n  - --start-at\n  - '2026-11-26T18:00:00Z'\n  - --seed\n  - '1'\n  \
             env:\n  - name: A\n    value: 'on'\n  - name: B\n    value: x\n  empty: {}\n  none: []\n  \
             'n': 3\n  ok: true\n  nested:\n  - - 1\n    - 2\n  - a:\n      b: c\n"
        );
        let back: Value = serde_yaml_ng::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
