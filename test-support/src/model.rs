//! Point builders on the model's types (the engine's tests).

use vecshard_model::{Point, Value};

/// A 3-d point whose vector and one-byte payload encode its key.
pub fn point3(k: u64) -> Point {
    Point::new(k, vec![k as f32, 1.0, 2.0]).with_payload(vec![k as u8])
}

/// A 4-d point with metadata `n` (= i) and a three-byte payload, all from `i`.
pub fn point4(i: u64) -> Point {
    Point::new(i, vec![i as f32, (i % 7) as f32, 1.0, -(i as f32)])
        .with("n", Value::Int(i as i64))
        .with_payload(vec![i as u8; 3])
}
