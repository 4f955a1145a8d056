//! The one error of the model: what kind of rule was broken, where (a field path such as
//! `points[3].vector` or `filter.and[1].in`), and a message naming the problem.

use std::borrow::Cow;
use std::fmt;

/// Which rule an input broke; every kind is a client error (invalid argument) to callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationKind {
    /// A required part is missing (no key, no value, no operator).
    Missing,
    /// The input does not follow the grammar (JSON points and filters, unknown fields).
    Malformed,
    /// A vector's length differs from the collection's dimension.
    Dimension,
    /// A NaN or infinite number.
    NotFinite,
    /// A zero vector where the metric needs a direction (cosine).
    ZeroVector,
    /// A size or count limit is exceeded (key, payload, metadata, batch, filter).
    TooLarge,
    /// A number outside its allowed range (dimension, k, ef, index parameters).
    OutOfRange,
    /// A name with characters or a length that are not allowed.
    BadName,
}

impl ValidationKind {
    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationKind::Missing => "missing",
            ValidationKind::Malformed => "malformed",
            ValidationKind::Dimension => "dimension",
            ValidationKind::NotFinite => "not_finite",
            ValidationKind::ZeroVector => "zero_vector",
            ValidationKind::TooLarge => "too_large",
            ValidationKind::OutOfRange => "out_of_range",
            ValidationKind::BadName => "bad_name",
        }
    }
}

/// Input that breaks a rule of the data model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    kind: ValidationKind,
    field: String,
    message: String,
}

/// The model's result type.
pub type Result<T, E = ValidationError> = std::result::Result<T, E>;

impl ValidationError {
    /// An error of `kind` about `field` (a path, may be empty) with a message.
    pub fn new(kind: ValidationKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        ValidationError {
            kind,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Which rule was broken.
    pub fn kind(&self) -> ValidationKind {
        self.kind
    }

    /// The path of the offending part (`points[3].vector`), empty when it is the whole input.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong, without the field.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same error located inside `outer`: `points[3]` + `vector` → `points[3].vector`.
    pub fn within(mut self, outer: impl fmt::Display) -> Self {
        let outer = outer.to_string();
        self.field = match (outer.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => outer,
            (false, false) if self.field.starts_with('[') => format!("{outer}{}", self.field),
            (false, false) => format!("{outer}.{}", self.field),
        };
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for ValidationError {}

/// The longest error message sent to a client, in bytes. gRPC carries the message in a
/// header (percent-encoded, up to 3× longer) and clients refuse headers beyond 16 KiB by
/// default, so an error that echoes a large input (a 100 KB key) would make the client drop
/// the answer.
pub const MAX_MESSAGE_BYTES: usize = 2048;

/// `msg` cut to about [`MAX_MESSAGE_BYTES`] on character boundaries: its start and its end
/// (where messages say what is wrong) are kept, the middle (usually an echoed input) goes.
pub fn bounded_message(msg: &str) -> Cow<'_, str> {
    if msg.len() <= MAX_MESSAGE_BYTES {
        return Cow::Borrowed(msg);
    }
    let mut head = MAX_MESSAGE_BYTES / 2;
    while !msg.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = msg.len() - MAX_MESSAGE_BYTES / 2;
    while !msg.is_char_boundary(tail) {
        tail += 1;
    }
    Cow::Owned(format!(
        "{}…({} bytes cut)…{}",
        &msg[..head],
        tail - head,
        &msg[tail..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(bounded_message("short"), "short");
        let long = format!("key {} has 10001 bytes", "é".repeat(5000));
        let cut = bounded_message(&long);
        assert!(cut.len() < MAX_MESSAGE_BYTES + 40, "{}", cut.len());
        assert!(cut.starts_with("key éé"), "{cut}");
        assert!(cut.ends_with("éé has 10001 bytes"), "{cut}");
        assert!(cut.contains("bytes cut)"), "{cut}");
    }

    #[test]
    fn fields_nest() {
        let e = ValidationError::new(ValidationKind::NotFinite, "vector", "NaN at index 2");
        assert_eq!(
            e.clone().within("points[3]").to_string(),
            "points[3].vector: NaN at index 2"
        );
        let e = ValidationError::new(ValidationKind::Missing, "", "key is required");
        assert_eq!(e.within("keys[1]").field(), "keys[1]");
        let e = ValidationError::new(ValidationKind::Malformed, "[2]", "x");
        assert_eq!(e.within("filter.and").field(), "filter.and[2]");
    }
}
