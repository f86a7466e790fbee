//! Free text in commands: names, titles, references.

/// `raw` without surrounding white space, when it has `min` to `max` characters (Unicode
/// scalar values, not bytes); `None` otherwise.
pub fn trimmed(raw: &str, min: usize, max: usize) -> Option<String> {
    let value = raw.trim();
    let length = value.chars().count();
    (min..=max).contains(&length).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::trimmed;

    #[test]
    fn trims_and_counts_characters_not_bytes() {
        assert_eq!(trimmed("  Café  ", 1, 4), Some("Café".into()));
        assert_eq!(trimmed("   ", 1, 4), None);
        assert_eq!(trimmed("   ", 0, 4), Some(String::new()));
        assert_eq!(trimmed("Cafés", 1, 4), None);
    }
}
