//! Key paths in parse errors: joining the outer path with the one a nested deserializer reported.

/// serde_yaml starts some messages with its own (less precise) path; drop it.
pub(super) fn strip_yaml_path(message: &str) -> String {
    match message.split_once(": ") {
        Some((head, rest)) if looks_like_path(head) && !head.is_empty() => rest.to_string(),
        _ => message.to_string(),
    }
}

fn looks_like_path(text: &str) -> bool {
    text.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]-".contains(c))
}

/// Joins the outer path with a path that a nested deserializer put in front of its message.
pub(super) fn join_path(outer: &str, message: &str) -> (String, String) {
    let outer = if outer == "." { "" } else { outer };
    let (inner, rest) = match message.split_once(": ") {
        Some((head, rest)) if looks_like_path(head) && !head.is_empty() && !head.contains("..") => (head, rest),
        _ => ("", message),
    };
    let path = match (outer, inner) {
        ("", "") => "(top level)".to_string(),
        (o, "") => o.to_string(),
        ("", i) => i.to_string(),
        (o, i) if i.starts_with('[') => format!("{o}{i}"),
        (o, i) => format!("{o}.{i}"),
    };
    (path, rest.to_string())
}
