//! Parquet through arrow-rs. Columns, by name (any other column is an error, as an unknown
//! field is in JSON lines — nothing is dropped silently):
//!
//! - `vector` (required): a fixed-size list or list of float32, no nulls;
//! - `key` or `id`: an integer (non-negative) or string column; `key_str`: a string column
//!   for the rows whose `key` is null (the export's layout for collections that mix
//!   integer and string keys). No key column: keys are row numbers, from 0;
//! - `metadata`: text, a JSON object in the model's grammar (null: none);
//! - `payload`: binary or text (null: empty).

use std::collections::VecDeque;
use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int32Type, Int64Type, UInt32Type, UInt64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use vecshard_model::{Key, Point};

const KNOWN: [&str; 6] = ["vector", "key", "id", "key_str", "metadata", "payload"];

/// The points of a Parquet file, a record batch at a time.
pub(super) struct ParquetPoints {
    reader: ParquetRecordBatchReader,
    path: String,
    /// The row number of the next batch's first row.
    next_row: u64,
    pending: VecDeque<Result<Point>>,
    failed: bool,
}

impl ParquetPoints {
    pub(super) fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let f = File::open(path).with_context(|| format!("open {name}"))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(f)
            .with_context(|| format!("{name}: not a readable Parquet file"))?;
        check_schema(builder.schema()).map_err(|e| anyhow!("{name}: {e}"))?;
        let reader = builder
            .with_batch_size(1024)
            .build()
            .with_context(|| format!("{name}: cannot read"))?;
        Ok(ParquetPoints {
            reader,
            path: name,
            next_row: 0,
            pending: VecDeque::new(),
            failed: false,
        })
    }
}

impl Iterator for ParquetPoints {
    type Item = Result<Point>;
    fn next(&mut self) -> Option<Result<Point>> {
        while self.pending.is_empty() && !self.failed {
            let batch = match self.reader.next()? {
                Ok(b) => b,
                Err(e) => {
                    self.failed = true;
                    let at = self.next_row;
                    return Some(Err(anyhow!("{}: rows from {at}: {e}", self.path)));
                }
            };
            let first = self.next_row;
            self.next_row += batch.num_rows() as u64;
            for i in 0..batch.num_rows() {
                let row = first + i as u64;
                match point_at(&batch, i, row) {
                    Ok(p) => self.pending.push_back(Ok(p)),
                    Err(e) => {
                        self.pending
                            .push_back(Err(anyhow!("{}: row {row}: {e}", self.path)));
                        self.failed = true;
                        break;
                    }
                }
            }
        }
        self.pending.pop_front()
    }
}

/// The number of rows, from the footer.
pub(super) fn row_count(path: &Path) -> Option<u64> {
    let f = File::open(path).ok()?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).ok()?;
    u64::try_from(b.metadata().file_metadata().num_rows()).ok()
}

fn check_schema(schema: &arrow_schema::Schema) -> Result<()> {
    for f in schema.fields() {
        if !KNOWN.contains(&f.name().as_str()) {
            bail!(
                "unknown column {:?}: expected vector, key (or id), key_str, metadata, payload",
                f.name()
            );
        }
    }
    if schema.column_with_name("key").is_some() && schema.column_with_name("id").is_some() {
        bail!("both a key and an id column: keep one");
    }
    let vector = schema
        .field_with_name("vector")
        .map_err(|_| anyhow!("no vector column"))?;
    let item = match vector.data_type() {
        DataType::FixedSizeList(item, _) | DataType::List(item) | DataType::LargeList(item) => {
            item.data_type()
        }
        other => bail!("the vector column holds {other}, not a list of float32"),
    };
    if item != &DataType::Float32 {
        bail!("the vector column holds lists of {item}, not of float32");
    }
    Ok(())
}

fn point_at(b: &RecordBatch, i: usize, row: u64) -> Result<Point> {
    let key = match b.column_by_name("key").or_else(|| b.column_by_name("id")) {
        Some(col) => key_at(col.as_ref(), i)?,
        None => Some(Key::Int(row)),
    };
    let key = match (key, b.column_by_name("key_str")) {
        (Some(k), _) => k,
        (None, Some(col)) => key_at(col.as_ref(), i)?
            .ok_or_else(|| anyhow!("no key: key and key_str are both null"))?,
        (None, None) => bail!("the key is null"),
    };
    let vector = vector_at(b.column_by_name("vector").expect("checked").as_ref(), i)?;
    let mut p = Point::new(key, vector);
    if let Some(text) = b
        .column_by_name("metadata")
        .and_then(|c| text_at(c.as_ref(), i))
    {
        let json: serde_json::Value =
            serde_json::from_str(text?).map_err(|e| anyhow!("metadata is not JSON: {e}"))?;
        p.metadata = vecshard_model::json::metadata_from_json(&json)?;
    }
    if let Some(col) = b.column_by_name("payload") {
        p.payload = bytes_at(col.as_ref(), i)?;
    }
    Ok(p)
}

fn key_at(col: &dyn Array, i: usize) -> Result<Option<Key>> {
    if col.is_null(i) {
        return Ok(None);
    }
    let negative = |v: i64| anyhow!("key {v} is negative: integer keys are unsigned");
    Ok(Some(match col.data_type() {
        DataType::UInt64 => Key::Int(col.as_primitive::<UInt64Type>().value(i)),
        DataType::UInt32 => Key::Int(col.as_primitive::<UInt32Type>().value(i).into()),
        DataType::Int64 => {
            let v = col.as_primitive::<Int64Type>().value(i);
            Key::Int(u64::try_from(v).map_err(|_| negative(v))?)
        }
        DataType::Int32 => {
            let v = col.as_primitive::<Int32Type>().value(i);
            Key::Int(u64::try_from(v).map_err(|_| negative(v.into()))?)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            Key::Str(text_at(col, i).expect("not null")?.to_string())
        }
        other => bail!("a key column holds {other}: expected integers or strings"),
    }))
}

fn vector_at(col: &dyn Array, i: usize) -> Result<Vec<f32>> {
    if col.is_null(i) {
        bail!("the vector is null");
    }
    let values = match col.data_type() {
        DataType::FixedSizeList(..) => col.as_fixed_size_list().value(i),
        DataType::List(_) => col.as_list::<i32>().value(i),
        DataType::LargeList(_) => col.as_list::<i64>().value(i),
        other => bail!("the vector column holds {other}"),
    };
    if values.null_count() > 0 {
        bail!("the vector holds a null");
    }
    Ok(values.as_primitive::<Float32Type>().values().to_vec())
}

/// Text of a string column's row; None when null or not a string column.
fn text_at(col: &dyn Array, i: usize) -> Option<Result<&str>> {
    if col.is_null(i) {
        return None;
    }
    Some(match col.data_type() {
        DataType::Utf8 => Ok(col.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => Ok(col.as_string::<i64>().value(i)),
        DataType::Utf8View => Ok(col.as_string_view().value(i)),
        other => Err(anyhow!("a text column holds {other}")),
    })
}

fn bytes_at(col: &dyn Array, i: usize) -> Result<Vec<u8>> {
    if col.is_null(i) {
        return Ok(Vec::new());
    }
    Ok(match col.data_type() {
        DataType::Binary => col.as_binary::<i32>().value(i).to_vec(),
        DataType::LargeBinary => col.as_binary::<i64>().value(i).to_vec(),
        DataType::BinaryView => col.as_binary_view().value(i).to_vec(),
        _ => text_at(col, i)
            .expect("not null")
            .map_err(|_| anyhow!("the payload column holds {}", col.data_type()))?
            .as_bytes()
            .to_vec(),
    })
}
