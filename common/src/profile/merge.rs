//! The merge rule of the profile system.
//!
//! When both sides hold a table at a key the tables merge recursively; in every
//! other case the right side replaces the left whole (lists and scalars are never
//! concatenated). This is the `deepMerge` of the original Nix flake.

use serde_json::Value;

/// Merges `right` into `left` in place; `right` wins.
pub fn deep_merge(left: &mut Value, right: Value) {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            for (key, rv) in r {
                match l.get_mut(&key) {
                    Some(lv) => deep_merge(lv, rv),
                    None => {
                        l.insert(key, rv);
                    }
                }
            }
        }
        (l, r) => *l = r,
    }
}

/// Pure form of [`deep_merge`].
pub fn merged(left: &Value, right: &Value) -> Value {
    let mut out = left.clone();
    deep_merge(&mut out, right.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn check(left: Value, right: Value, expect: Value) {
        assert_eq!(merged(&left, &right), expect, "merge({left}, {right})");
    }

    #[test]
    fn tables_merge_recursively() {
        check(
            json!({"hls": {"segmentDuration": 2, "listSize": 10}, "port": 1}),
            json!({"hls": {"segmentDuration": 1}}),
            json!({"hls": {"segmentDuration": 1, "listSize": 10}, "port": 1}),
        );
    }

    #[test]
    fn lists_are_replaced_whole() {
        check(
            json!({"variants": [{"name": "720p"}, {"name": "360p"}]}),
            json!({"variants": [{"name": "2160p"}]}),
            json!({"variants": [{"name": "2160p"}]}),
        );
    }

    #[test]
    fn scalar_replaces_table_and_table_replaces_scalar() {
        check(json!({"a": {"b": 1}}), json!({"a": 3}), json!({"a": 3}));
        check(
            json!({"a": 3}),
            json!({"a": {"b": 1}}),
            json!({"a": {"b": 1}}),
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-d]", arb_value(), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// Every leaf path of `v` with its value (lists count as leaves).
    fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, x) in m {
                    leaves(x, &format!("{prefix}/{k}"), out);
                }
            }
            other => out.push((prefix.to_owned(), other.clone())),
        }
    }

    proptest! {
        #[test]
        fn empty_side_is_identity(v in arb_object()) {
            prop_assert_eq!(merged(&v, &Value::Object(Default::default())), v.clone());
            prop_assert_eq!(merged(&Value::Object(Default::default()), &v), v);
        }

        #[test]
        fn right_side_wins_at_every_leaf(l in arb_object(), r in arb_object()) {
            let m = merged(&l, &r);
            let mut rl = Vec::new();
            leaves(&r, "", &mut rl);
            for (path, value) in rl {
                if path.is_empty() { continue; }
                // an empty table on the right merges into (and keeps) a left table
                if value == Value::Object(Default::default()) { continue; }
                prop_assert_eq!(m.pointer(&path), Some(&value), "at {}", path);
            }
        }

        #[test]
        fn left_keys_absent_from_right_survive(l in arb_object(), r in arb_object()) {
            let m = merged(&l, &r);
            for (k, v) in l.as_object().unwrap() {
                if !r.as_object().unwrap().contains_key(k) {
                    prop_assert_eq!(m.get(k), Some(v));
                }
            }
        }

        #[test]
        fn lists_never_concatenate(a in prop::collection::vec(any::<i64>(), 0..5), b in prop::collection::vec(any::<i64>(), 0..5)) {
            let m = merged(&serde_json::json!({"x": a}), &serde_json::json!({"x": b.clone()}));
            prop_assert_eq!(m, serde_json::json!({"x": b}));
        }
    }
}
