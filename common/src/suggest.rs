//! "Did you mean …?" for misspelt names.

/// The candidate closest to `given`, if any is close enough to be a plausible typo.
pub fn closest<'a, I>(given: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let given_l = given.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(&given_l, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (c.chars().count().max(given.chars().count()) / 3).max(2))
        .min_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let names = ["default", "low-latency", "4k-abr", "stress-test"];
        assert_eq!(
            closest("low-latancy", names).as_deref(),
            Some("low-latency")
        );
        assert_eq!(closest("stress", names).as_deref(), None);
        assert_eq!(closest("defualt", names).as_deref(), Some("default"));
        assert_eq!(
            closest("segmentDuraton", ["segmentDuration", "listSize"]).as_deref(),
            Some("segmentDuration")
        );
        assert_eq!(closest("zzzzzz", names), None);
    }
}
