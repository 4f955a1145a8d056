//! The set of containers (segments and memtables) a search sees, swapped as a whole.

use std::sync::Arc;

use crate::deletions::Deletions;
use crate::memtable::Memtable;
use crate::segment::Segment;
use crate::types::{Key, Metadata, Point};

/// A memtable or a segment.
#[derive(Clone)]
pub(crate) enum Container {
    Mem(Arc<Memtable>),
    Seg(Arc<Segment>),
}

impl Container {
    pub(crate) fn id(&self) -> u32 {
        match self {
            Container::Mem(m) => m.container,
            Container::Seg(s) => s.container,
        }
    }

    /// Rows stored (live or not).
    pub(crate) fn rows(&self) -> u32 {
        match self {
            Container::Mem(m) => m.rows() as u32,
            Container::Seg(s) => s.rows(),
        }
    }

    pub(crate) fn deleted(&self) -> &Deletions {
        match self {
            Container::Mem(m) => &m.deleted,
            Container::Seg(s) => &s.deleted,
        }
    }

    pub(crate) fn key(&self, row: u32) -> Key {
        match self {
            Container::Mem(m) => m.row(row).map(|r| r.key.clone()).unwrap_or_default(),
            Container::Seg(s) => s.key(row),
        }
    }

    pub(crate) fn vector(&self, row: u32) -> crate::Result<Vec<f32>> {
        match self {
            Container::Mem(m) => Ok(m.vector(row).to_vec()),
            Container::Seg(s) => s.vector(row).map(|v| v.into_owned()),
        }
    }

    pub(crate) fn metadata(&self, row: u32) -> crate::Result<Metadata> {
        match self {
            Container::Mem(m) => Ok(m.row(row).map(|r| r.metadata.clone()).unwrap_or_default()),
            Container::Seg(s) => s.metadata(row),
        }
    }

    pub(crate) fn payload(&self, row: u32) -> crate::Result<Vec<u8>> {
        match self {
            Container::Mem(m) => Ok(m.row(row).map(|r| r.payload.clone()).unwrap_or_default()),
            Container::Seg(s) => s.payload(row).map(|p| p.into_owned()),
        }
    }

    pub(crate) fn point(&self, row: u32) -> crate::Result<Point> {
        Ok(Point {
            key: self.key(row),
            vector: self.vector(row)?,
            metadata: self.metadata(row)?,
            payload: self.payload(row)?,
        })
    }
}

/// Containers visible together; segments first (oldest first), then memtables.
#[derive(Clone, Default)]
pub(crate) struct View {
    pub containers: Vec<Container>,
}

impl View {
    pub(crate) fn get(&self, id: u32) -> Option<&Container> {
        self.containers.iter().find(|c| c.id() == id)
    }

    pub(crate) fn segments(&self) -> impl Iterator<Item = &Arc<Segment>> {
        self.containers.iter().filter_map(|c| match c {
            Container::Seg(s) => Some(s),
            Container::Mem(_) => None,
        })
    }

    pub(crate) fn memtables(&self) -> impl Iterator<Item = &Arc<Memtable>> {
        self.containers.iter().filter_map(|c| match c {
            Container::Mem(m) => Some(m),
            Container::Seg(_) => None,
        })
    }

    /// This view with container `id` replaced by `with` (or removed when `None`).
    pub(crate) fn replace(&self, id: u32, with: Option<Container>) -> View {
        let mut containers: Vec<Container> = self
            .containers
            .iter()
            .filter(|c| c.id() != id)
            .cloned()
            .collect();
        if let Some(c) = with {
            containers.push(c);
        }
        View { containers }.sorted()
    }

    /// This view with containers `remove` dropped and `add` added.
    pub(crate) fn swap(&self, remove: &[u32], add: Container) -> View {
        let mut containers: Vec<Container> = self
            .containers
            .iter()
            .filter(|c| !remove.contains(&c.id()))
            .cloned()
            .collect();
        containers.push(add);
        View { containers }.sorted()
    }

    pub(crate) fn with_memtable(&self, m: Arc<Memtable>) -> View {
        let mut v = self.clone();
        v.containers.push(Container::Mem(m));
        v.sorted()
    }

    fn sorted(mut self) -> View {
        self.containers.sort_by_key(|c| match c {
            Container::Seg(s) => (0, s.max_seq(), s.container),
            Container::Mem(m) => (1, 0, m.container),
        });
        self
    }
}
