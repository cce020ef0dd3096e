//! User overrides: `--set PATH=VALUE` and `--overrides FILE`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::error::ConfigError;

/// Turns `hls.segmentDuration=4` into `{"hls": {"segmentDuration": 4}}`.
///
/// The value is a TOML literal (`4`, `true`, `"x"`, `[1, 2]`, `{ a = 1 }`); anything
/// that is not one — a bare word such as `fast` or `9000k` — is taken as a string.
pub fn parse_set(arg: &str) -> Result<Value, ConfigError> {
    let bad = |reason: &str| ConfigError::BadSet {
        arg: arg.to_owned(),
        reason: reason.to_owned(),
    };
    let (path, raw) = arg.split_once('=').ok_or_else(|| bad("missing `=`"))?;
    let path = path.trim();
    if path.is_empty() {
        return Err(bad("empty path"));
    }
    let keys: Vec<&str> = path.split('.').collect();
    if let Some(k) = keys.iter().find(|k| {
        k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    }) {
        return Err(bad(&format!(
            "`{k}` is not a key name (keys are letters, digits, `_` and `-`, joined by `.`)"
        )));
    }
    let value = parse_literal(raw);
    let mut v = value;
    for k in keys.iter().rev() {
        let mut m = Map::new();
        m.insert((*k).to_owned(), v);
        v = Value::Object(m);
    }
    Ok(v)
}

fn parse_literal(raw: &str) -> Value {
    let trimmed = raw.trim();
    if let Ok(mut table) = toml::from_str::<toml::Table>(&format!("v = {trimmed}")) {
        if table.len() == 1 {
            if let Some(v) = table.remove("v") {
                if let Ok(json) = serde_json::to_value(v) {
                    return json;
                }
            }
        }
    }
    Value::String(raw.to_owned())
}

/// The largest `--overrides` or `--profiles` file, in bytes.
pub const MAX_DATA_FILE: u64 = 1024 * 1024;

/// Reads a TOML or JSON file (by extension; `.json` is JSON, anything else
/// TOML) of at most [`MAX_DATA_FILE`] bytes.
pub fn read_data_file(path: &Path) -> Result<Value, ConfigError> {
    use std::io::Read;
    let err = |reason: String| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_DATA_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_DATA_FILE {
        return Err(err(format!(
            "it is larger than the limit of {} KiB for a config file; a config is a few KiB",
            MAX_DATA_FILE / 1024
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| err("it is not UTF-8 text".into()))?;
    let parsed: Result<Value, String> = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))
    } else {
        toml::from_str(&text).map_err(|e| format!("not valid TOML: {e}"))
    };
    let value = parsed.map_err(|reason| ConfigError::File {
        path: path.to_path_buf(),
        reason,
    })?;
    if !value.is_object() {
        return Err(ConfigError::File {
            path: path.to_path_buf(),
            reason: "the top level must be a table/object".into(),
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(arg: &str, expect: Value) {
        assert_eq!(parse_set(arg).unwrap(), expect, "{arg}");
    }

    #[test]
    fn values_are_toml_literals_or_bare_strings() {
        check("a.b=3", json!({"a": {"b": 3}}));
        check("a=-1", json!({"a": -1}));
        check("a=true", json!({"a": true}));
        check("a=fast", json!({"a": "fast"}));
        check("a=9000k", json!({"a": "9000k"}));
        check("a=\"quoted\"", json!({"a": "quoted"}));
        check("a=[1, 2]", json!({"a": [1, 2]}));
        check("a={ x = 1 }", json!({"a": {"x": 1}}));
        check("a=", json!({"a": ""}));
        check("a=x=y", json!({"a": "x=y"}));
        // a value cannot smuggle in a second key
        check("a=1\nb = 2", json!({"a": "1\nb = 2"}));
    }

    #[test]
    fn malformed_sets_are_rejected() {
        for arg in ["noequals", "=3", "a..b=1", "a b=1", "a.=1"] {
            assert!(
                matches!(parse_set(arg), Err(ConfigError::BadSet { .. })),
                "{arg}"
            );
        }
    }

    #[test]
    fn data_files_by_extension() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("o.toml");
        std::fs::write(&t, "[hls]\nlistSize = 4\n").unwrap();
        assert_eq!(read_data_file(&t).unwrap(), json!({"hls": {"listSize": 4}}));
        let j = dir.path().join("o.json");
        std::fs::write(&j, "{\"hls\": {\"listSize\": 4}}").unwrap();
        assert_eq!(read_data_file(&j).unwrap(), json!({"hls": {"listSize": 4}}));
        // the size limit: just at it is read, one byte over is refused
        let pad = |n: usize| format!("#{}\n", "x".repeat(n - 2));
        std::fs::write(&t, pad(MAX_DATA_FILE as usize)).unwrap();
        assert_eq!(read_data_file(&t).unwrap(), json!({}));
        std::fs::write(&t, pad(MAX_DATA_FILE as usize + 1)).unwrap();
        let e = read_data_file(&t).unwrap_err().to_string();
        assert!(e.contains("larger than the limit of 1024 KiB"), "{e}");
        std::fs::write(&j, "[1]").unwrap();
        assert!(read_data_file(&j).is_err());
        assert!(read_data_file(&dir.path().join("missing.toml")).is_err());
    }
}
