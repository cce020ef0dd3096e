//! JSON Schema of a config type (schemars) and validation of a merged config
//! against it (jsonschema), with errors rendered for people: dotted path, what
//! was expected, what was given, where it came from, and the closest valid key.

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::ValidationError;
use schemars::JsonSchema;
use serde_json::Value;

use crate::error::{ConfigError, Problem};
use crate::profile::{dotted, Provenance};
use crate::suggest::closest;

/// The JSON Schema of `T` as a JSON value.
pub fn schema_of<T: JsonSchema>() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<T>();
    serde_json::to_value(schema).expect("a schema is always JSON")
}

/// Validates `instance` against `schema`; every violation becomes a [`Problem`].
pub fn validate(
    schema: &Value,
    instance: &Value,
    provenance: &Provenance,
) -> Result<(), ConfigError> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("component schemas are valid JSON Schema");
    let mut problems: Vec<Problem> = Vec::new();
    for err in validator.iter_errors(instance) {
        for p in explain(schema, instance, &err, provenance) {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        // one problem a value: a string both too long and off its pattern
        // is described once, by what it should be
        let described: Vec<String> = problems
            .iter()
            .filter(|p| p.message.starts_with("expected "))
            .map(|p| p.path.clone())
            .collect();
        problems.retain(|p| p.message.starts_with("expected ") || !described.contains(&p.path));
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        Err(ConfigError::Invalid { problems })
    }
}

fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn explain(
    schema: &Value,
    root: &Value,
    err: &ValidationError<'_>,
    prov: &Provenance,
) -> Vec<Problem> {
    let segs = pointer_segments(err.instance_path().as_str());
    let path = dotted(root, &segs);
    let given = compact(err.instance());
    let node = schema_at(schema, schema, &segs);
    let problem = |path: String, message: String| Problem {
        source: prov.source_of(&path).cloned(),
        path,
        message,
    };
    // an error about a table as a whole (too many entries, a bad key) comes
    // from whichever layer last added to it, not the one that made it
    let table_problem = |path: String, message: String| Problem {
        source: prov.source_within(&path).cloned(),
        path,
        message,
    };
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let valid: Vec<String> = node.map(|n| property_names(schema, n)).unwrap_or_default();
            unexpected
                .iter()
                .map(|key| {
                    let full = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    let hint = match closest(key, valid.iter().map(String::as_str)) {
                        Some(s) => {
                            let s_full = if path.is_empty() {
                                s
                            } else {
                                format!("{path}.{s}")
                            };
                            format!("; did you mean `{s_full}`?")
                        }
                        None => format!("; valid keys here: {}", valid.join(", ")),
                    };
                    problem(full, format!("unknown key{hint}"))
                })
                .collect()
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            // Option<T> is `anyOf [T, null]`: explain the branch that is not `null`.
            let branch = context.iter().find(|errs| {
                !errs.iter().any(|e| matches!(e.kind(), ValidationErrorKind::Type { kind: TypeKind::Single(t) } if t.to_string() == "null"))
            });
            match branch {
                Some(errs) if !errs.is_empty() => errs
                    .iter()
                    .flat_map(|e| explain(schema, root, e, prov))
                    .collect(),
                _ => vec![problem(
                    path,
                    format!("expected {}, got {given}", describe(node)),
                )],
            }
        }
        kind => {
            let expected = match kind {
                ValidationErrorKind::Type { kind } => {
                    let t = match kind {
                        TypeKind::Single(t) => t.to_string(),
                        TypeKind::Multiple(ts) => ts
                            .iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(" or "),
                    };
                    match describe_opt(node) {
                        Some(d) => format!("{} ({d})", article(&t)),
                        None => article(&t),
                    }
                }
                ValidationErrorKind::Minimum { limit } => format!("a number ≥ {limit}"),
                ValidationErrorKind::Maximum { limit } => format!("a number ≤ {limit}"),
                ValidationErrorKind::ExclusiveMinimum { limit } => format!("a number > {limit}"),
                ValidationErrorKind::ExclusiveMaximum { limit } => format!("a number < {limit}"),
                ValidationErrorKind::Enum { options } => {
                    let opts: Vec<&str> = options
                        .as_array()
                        .map(|o| o.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let hint = err
                        .instance()
                        .as_str()
                        .and_then(|g| closest(g, opts.iter().copied()))
                        .map(|s| format!(" (did you mean \"{s}\"?)"))
                        .unwrap_or_default();
                    format!(
                        "one of {}{hint}",
                        options
                            .as_array()
                            .map(|o| o.iter().map(compact).collect::<Vec<_>>().join(", "))
                            .unwrap_or_default()
                    )
                }
                ValidationErrorKind::Pattern { pattern } => {
                    describe_opt(node).unwrap_or_else(|| format!("a string matching `{pattern}`"))
                }
                ValidationErrorKind::MinItems { limit } => format!("at least {limit} item(s)"),
                ValidationErrorKind::MaxItems { limit } => {
                    let n = err.instance().as_array().map_or(0, Vec::len);
                    return vec![problem(
                        path,
                        format!("at most {limit} item(s) allowed, got {n}"),
                    )];
                }
                ValidationErrorKind::MaxProperties { limit } => {
                    let n = err.instance().as_object().map_or(0, |o| o.len());
                    return vec![table_problem(
                        path,
                        format!("at most {limit} entries allowed, got {n}"),
                    )];
                }
                ValidationErrorKind::PropertyNames { error } => {
                    let key = error.instance().as_str().unwrap_or_default();
                    let shown = compact(error.instance());
                    let why = match error.kind() {
                        ValidationErrorKind::MaxLength { limit } => format!(
                            "a name of at most {limit} characters, got {} characters: {shown}",
                            key.chars().count()
                        ),
                        ValidationErrorKind::MinLength { limit } => {
                            format!("a name of at least {limit} character(s), got {shown}")
                        }
                        ValidationErrorKind::Pattern { .. } => {
                            let names = node.and_then(|n| n.get("propertyNames"));
                            match describe_opt(names) {
                                Some(d) => format!("{d}, got {shown}"),
                                None => format!("a name of letters, digits and -, got {shown}"),
                            }
                        }
                        _ => format!("a valid name, got {shown}"),
                    };
                    return vec![table_problem(path, format!("bad key: expected {why}"))];
                }
                ValidationErrorKind::MaxLength { limit } => {
                    let n = err.instance().as_str().map_or(0, |s| s.chars().count());
                    return vec![problem(
                        path,
                        format!("at most {limit} characters allowed, got {n}: {given}"),
                    )];
                }
                ValidationErrorKind::MinLength { limit } => {
                    format!("at least {limit} character(s)")
                }
                ValidationErrorKind::Required { property } => {
                    let key = property.as_str().unwrap_or_default();
                    let full = if path.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{path}.{key}")
                    };
                    return vec![problem(full, "missing required key".into())];
                }
                other => format!("a value that satisfies `{}`", other.keyword()),
            };
            vec![problem(path, format!("expected {expected}, got {given}"))]
        }
    }
}

fn article(t: &str) -> String {
    match t {
        "integer" | "object" | "array" => format!("an {t}"),
        "null" => "null".into(),
        _ => format!("a {t}"),
    }
}

fn compact(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(57).collect::<String>())
    } else {
        s
    }
}

fn describe(node: Option<&Value>) -> String {
    describe_opt(node).unwrap_or_else(|| "a valid value".into())
}

fn describe_opt(node: Option<&Value>) -> Option<String> {
    let d = node?.get("description")?.as_str()?;
    // first sentence, lower-cased first letter, no trailing dot
    let first = d.split("\n\n").next().unwrap_or(d).replace('\n', " ");
    let first = first.trim_end_matches('.');
    let mut chars = first.chars();
    let head = chars.next()?;
    Some(head.to_lowercase().chain(chars).collect())
}

/// Follows `$ref` (local `#/$defs/…`) and `allOf`/`anyOf` of one element to the real node.
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(r) = node.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(n) => node = n,
                None => return node,
            }
        } else if let Some(branches) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Value::as_array)
        {
            match branches
                .iter()
                .find(|b| b.get("type") != Some(&Value::from("null")))
            {
                Some(b) => node = b,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

/// The schema node that describes the value at `segs`.
/// A node's schema for a table: the node, or the `then` of an `if` that
/// picks a table form (as a value that is a plain value or a table).
fn table_form<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let node = resolve(root, node);
    match (node.get("properties"), node.get("then")) {
        (None, Some(then)) => resolve(root, then),
        _ => node,
    }
}

fn schema_at<'a>(root: &'a Value, node: &'a Value, segs: &[String]) -> Option<&'a Value> {
    let mut node = resolve(root, node);
    for seg in segs {
        let node_table = table_form(root, node);
        let next = node_table
            .get("properties")
            .and_then(|p| p.get(seg.as_str()))
            .or_else(|| node_table.get("items"))
            .or_else(|| {
                node_table
                    .get("additionalProperties")
                    .filter(|a| a.is_object())
            })?;
        node = resolve(root, next);
    }
    // keep the description of a field even when its type is a `$ref`
    Some(node)
}

fn property_names(root: &Value, node: &Value) -> Vec<String> {
    table_form(root, node)
        .get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Source;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Inner {
        /// Length of one segment in seconds.
        #[schemars(range(min = 1))]
        segment_duration: u32,
        list_size: u32,
    }

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Outer {
        hls: Inner,
        #[schemars(regex(pattern = r"^[0-9]+k$"))]
        rate: String,
        opt: Option<Inner>,
        mode: Mode,
    }

    #[derive(Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Mode {
        User,
        Tap,
    }

    fn problems(v: Value) -> Vec<Problem> {
        let mut prov = Provenance::default();
        prov.record(&v, &Source::Set("x=y".into()));
        match validate(&schema_of::<Outer>(), &v, &prov) {
            Err(ConfigError::Invalid { problems }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    fn good() -> Value {
        json!({"hls": {"segmentDuration": 2, "listSize": 3}, "rate": "5k", "opt": null, "mode": "user"})
    }

    fn with(path: &str, v: Value) -> Value {
        let mut g = good();
        *g.pointer_mut(path).unwrap() = v;
        g
    }

    #[test]
    fn valid_config_passes() {
        validate(&schema_of::<Outer>(), &good(), &Provenance::default()).unwrap();
    }

    #[test]
    fn unknown_key_gets_path_and_suggestion() {
        let mut v = good();
        v["hls"]["segmentDuraton"] = json!(3);
        let p = problems(v);
        assert_eq!(p[0].path, "hls.segmentDuraton");
        assert!(
            p[0].message.contains("did you mean `hls.segmentDuration`"),
            "{}",
            p[0]
        );
        assert_eq!(p[0].source, Some(Source::Set("x=y".into())));
    }

    #[test]
    fn each_kind_of_violation_names_path_expected_and_given() {
        let cases = [
            (
                with("/hls/segmentDuration", json!(0)),
                "hls.segmentDuration",
                "≥ 1",
            ),
            (with("/hls/listSize", json!(-1)), "hls.listSize", "≥ 0"),
            (
                with("/hls/listSize", json!("x")),
                "hls.listSize",
                "an integer",
            ),
            (with("/rate", json!("fast")), "rate", "\"fast\""),
            (
                with("/mode", json!("bridge")),
                "mode",
                "one of \"user\", \"tap\"",
            ),
            (
                with("/opt", json!({"segmentDuration": 0, "listSize": 1})),
                "opt.segmentDuration",
                "≥ 1",
            ),
        ];
        for (v, path, needle) in cases {
            let p = problems(v);
            assert_eq!(p[0].path, path);
            assert!(p[0].to_string().contains(needle), "{} lacks {needle}", p[0]);
            assert!(p[0].to_string().contains("set by --set x=y"), "{}", p[0]);
        }
    }

    #[test]
    fn description_is_used_for_expectations() {
        let p = problems(with("/hls/segmentDuration", json!("two")));
        assert!(
            p[0].message.contains("length of one segment in seconds"),
            "{}",
            p[0]
        );
    }

    #[test]
    fn missing_key_is_named() {
        let mut v = good();
        v["hls"].as_object_mut().unwrap().remove("listSize");
        assert_eq!(problems(v)[0].path, "hls.listSize");
    }
}
