//! Parquet (snappy) with the columns [`crate::read`] reads: `key` (uint64, null for a
//! string key), `key_str` (string, null for an integer key), `vector` (fixed-size list of
//! float32, the collection's dimension), `metadata` (the model's JSON text, null when
//! none), `payload` (binary, null when empty).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow_array::{
    ArrayRef, BinaryArray, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use vecshard_model::{Key, Point};

use super::PointWriter;

/// Rows are buffered in memory up to a row group: about this many bytes of vectors.
const ROW_GROUP_BYTES: usize = 64 << 20;

/// Parquet into a file.
pub struct ParquetWriter {
    writer: ArrowWriter<BufWriter<File>>,
    schema: SchemaRef,
    item: Arc<Field>,
    dim: usize,
    path: String,
}

impl ParquetWriter {
    /// A writer into `out` of vectors of `dim` values; `path` names it in errors.
    pub fn new(out: BufWriter<File>, path: &Path, dim: usize) -> Result<Self> {
        let path = path.display().to_string();
        let width = i32::try_from(dim).context("dimension")?;
        let item = Arc::new(Field::new("item", DataType::Float32, false));
        let schema = Arc::new(Schema::new(vec![
            Field::new("key", DataType::UInt64, true),
            Field::new("key_str", DataType::Utf8, true),
            Field::new(
                "vector",
                DataType::FixedSizeList(item.clone(), width),
                false,
            ),
            Field::new("metadata", DataType::Utf8, true),
            Field::new("payload", DataType::Binary, true),
        ]));
        let rows = (ROW_GROUP_BYTES / (dim.max(1) * 4)).max(1024);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(rows))
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .with_context(|| format!("start {path}"))?;
        Ok(ParquetWriter {
            writer,
            schema,
            item,
            dim,
            path,
        })
    }

    fn batch(&self, points: &[Point]) -> Result<RecordBatch> {
        let mut values = Vec::with_capacity(points.len() * self.dim);
        for p in points {
            if p.vector.len() != self.dim {
                bail!(
                    "point {} has {} values, the collection's dimension is {}",
                    p.key,
                    p.vector.len(),
                    self.dim
                );
            }
            values.extend_from_slice(&p.vector);
        }
        let int = |k: &Key| match k {
            Key::Int(v) => Some(*v),
            Key::Str(_) => None,
        };
        let text = |k: &Key| match k {
            Key::Int(_) => None,
            Key::Str(s) => Some(s.clone()),
        };
        let metadata = points.iter().map(|p| {
            (!p.metadata.is_empty())
                .then(|| vecshard_model::json::metadata_to_json(&p.metadata).to_string())
        });
        let payload: Vec<Option<&[u8]>> = points
            .iter()
            .map(|p| (!p.payload.is_empty()).then_some(p.payload.as_slice()))
            .collect();
        let vectors = FixedSizeListArray::try_new(
            self.item.clone(),
            self.dim as i32,
            Arc::new(Float32Array::from(values)),
            None,
        )?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(points.iter().map(|p| int(&p.key)).collect::<UInt64Array>()),
            Arc::new(points.iter().map(|p| text(&p.key)).collect::<StringArray>()),
            Arc::new(vectors),
            Arc::new(metadata.collect::<StringArray>()),
            Arc::new(BinaryArray::from(payload)),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl PointWriter for ParquetWriter {
    fn write(&mut self, points: &[Point]) -> Result<()> {
        let batch = self.batch(points)?;
        self.writer
            .write(&batch)
            .with_context(|| format!("write {}", self.path))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        let path = self.path;
        // Writes the last row group and the footer.
        let mut out = self
            .writer
            .into_inner()
            .with_context(|| format!("finish {path}"))?;
        std::io::Write::flush(&mut out).with_context(|| format!("write {path}"))
    }
}
