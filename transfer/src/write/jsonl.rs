//! JSON lines in the model's grammar, written so that reading them back gives the same
//! points bit for bit:
//!
//! - vector values in the shortest text that parses back to the same float32 (through
//!   f64, as the reader does), else the exact f64 text of the float32;
//! - a payload that is compact JSON (other than a string) is written as that JSON; any
//!   other UTF-8 payload as a JSON string (the reader stores a string's bytes); a payload
//!   that is not UTF-8 cannot be held by the grammar and is an error naming the key.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use vecshard_model::Point;
use vecshard_model::json::{key_to_json, metadata_to_json};

use super::PointWriter;

/// JSON lines into `W`.
pub struct JsonlWriter<W: Write + Send> {
    out: W,
    path: String,
    line: String,
}

impl<W: Write + Send> JsonlWriter<W> {
    /// A writer into `out`; `path` names it in errors.
    pub fn new(out: W, path: &Path) -> Self {
        JsonlWriter {
            out,
            path: path.display().to_string(),
            line: String::new(),
        }
    }
}

impl<W: Write + Send> PointWriter for JsonlWriter<W> {
    fn write(&mut self, points: &[Point]) -> Result<()> {
        for p in points {
            self.line.clear();
            line(p, &mut self.line)?;
            self.out
                .write_all(self.line.as_bytes())
                .with_context(|| format!("write {}", self.path))?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<()> {
        self.out
            .flush()
            .with_context(|| format!("write {}", self.path))
    }
}

/// One point as a line (with its newline).
fn line(p: &Point, out: &mut String) -> Result<()> {
    out.push_str("{\"id\":");
    out.push_str(&key_to_json(&p.key).to_string());
    out.push_str(",\"vector\":[");
    for (i, x) in p.vector.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        float(*x, out);
    }
    out.push(']');
    if !p.metadata.is_empty() {
        out.push_str(",\"metadata\":");
        out.push_str(&metadata_to_json(&p.metadata).to_string());
    }
    if !p.payload.is_empty() {
        out.push_str(",\"payload\":");
        payload(p, out)?;
    }
    out.push_str("}\n");
    Ok(())
}

/// A float32 as text that reads back (as f64, then rounded to f32) to the same value.
fn float(x: f32, out: &mut String) {
    let short = x.to_string();
    if short.parse::<f64>().map(|v| v as f32) == Ok(x) {
        out.push_str(&short);
    } else {
        let _ = write!(out, "{}", f64::from(x));
    }
}

fn payload(p: &Point, out: &mut String) -> Result<()> {
    let Ok(text) = std::str::from_utf8(&p.payload) else {
        bail!(
            "point {}: the payload is not UTF-8, which JSON lines cannot hold: export as parquet",
            p.key
        );
    };
    match serde_json::from_str::<serde_json::Value>(text) {
        // Compact JSON as the reader would store it (not `v == text`: that compares a JSON
        // string value with the text).
        Ok(v) if !v.is_string() && serde_json::to_string(&v).is_ok_and(|c| c == text) => {
            out.push_str(text)
        }
        _ => out.push_str(&serde_json::Value::from(text).to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(p: &Point) -> Point {
        let mut s = String::new();
        line(p, &mut s).unwrap();
        vecshard_model::json::point_from_str(s.trim_end()).unwrap()
    }

    #[test]
    fn payloads_come_back_byte_for_byte() {
        for payload in [
            &b"{\"a\":1}"[..],
            b"{\"b\": 1, \"a\": 2}",
            b"\"quoted\"",
            b"plain text",
            b"[1,2]",
            b"17",
            b"",
        ] {
            let p = Point::new(1u64, vec![0.5]).with_payload(payload);
            assert_eq!(round_trip(&p), p, "{:?}", String::from_utf8_lossy(payload));
        }
        let mut s = String::new();
        let binary = Point::new(3u64, vec![0.5]).with_payload(vec![0xff, 0]);
        assert!(
            line(&binary, &mut s)
                .unwrap_err()
                .to_string()
                .contains("parquet")
        );
    }

    #[test]
    fn floats_come_back_bit_for_bit() {
        let mut x = 1.0e-38f32;
        let mut v = Vec::new();
        while x < 1.0e38 {
            v.extend([x, -x, x.next_up(), x * 1.000_001]);
            x *= 1.37;
        }
        v.extend([0.0, -0.0, f32::MIN_POSITIVE, f32::MAX, f32::MIN, 1.0e-45]);
        let p = Point::new(2u64, v);
        let back = round_trip(&p);
        for (a, b) in p.vector.iter().zip(&back.vector) {
            assert_eq!(a.to_bits(), b.to_bits(), "{a} came back as {b}");
        }
    }
}
