//! The index catalogue: which indices exist (one record each in
//! `.warden-indices`), where an index's documents are kept (store index
//! `i/<index>`), and the index-level actions — create, delete, get.

use serde_json::{Map, Value, json};

use super::Embedded;
use crate::cluster::Reply;
use crate::store::{Expect, StoreError, Write};

/// Where index names are listed.
pub(super) const INDICES: &str = ".warden-indices";

/// Store indices holding an index's documents are `i/<index>`.
pub(super) const DOCS_PREFIX: &str = "i/";

/// The store index holding `index`'s documents.
pub(super) fn docs(index: &str) -> String {
    format!("{DOCS_PREFIX}{index}")
}

impl Embedded {
    /// The names of the existing indices.
    pub(super) fn index_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.store.list(INDICES)?.into_iter().map(|(name, _)| name).collect())
    }

    fn exists(&self, index: &str) -> Result<bool, StoreError> {
        Ok(self.store.get(INDICES, index)?.is_some())
    }

    /// OpenSearch's 404 for the first of `indices` that does not exist.
    pub(super) fn first_missing(&self, indices: &[String]) -> Result<Option<Reply>, StoreError> {
        for index in indices {
            if !self.exists(index)? {
                return Ok(Some(Reply::index_not_found(index)));
            }
        }
        Ok(None)
    }

    /// Those of `indices` that exist, in order.
    pub(super) fn existing_of(&self, indices: &[String]) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::with_capacity(indices.len());
        for index in indices {
            if self.exists(index)? {
                out.push(index.clone());
            }
        }
        Ok(out)
    }

    /// Creates those of `names` that do not exist yet: OpenSearch creates an
    /// index on its first write.
    pub(super) fn ensure_indices(&self, names: &[&str]) -> Result<(), StoreError> {
        let mut creates = Vec::new();
        for name in names {
            if !self.exists(name)? {
                creates.push(Write {
                    index: INDICES,
                    id: name,
                    source: Some(b"{}".to_vec()),
                    expect: Expect::Any,
                });
            }
        }
        if !creates.is_empty() {
            self.store.write(&creates)?;
        }
        Ok(())
    }

    /// `PUT /<index>`: only a new one.
    pub(super) fn create_index(&self, index: &str) -> Result<Reply, StoreError> {
        match self.store.write(&[Write {
            index: INDICES,
            id: index,
            source: Some(b"{}".to_vec()),
            expect: Expect::Absent,
        }]) {
            Ok(_) => Ok(Reply::new(
                200,
                json!({ "acknowledged": true, "shards_acknowledged": true, "index": index }),
            )),
            Err(StoreError::Conflict { .. }) => Ok(Reply::error(
                400,
                "resource_already_exists_exception",
                format!("index [{index}] already exists"),
            )),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /<indices>`: each index with its documents (and their
    /// postings), one transaction per index; all must exist.
    pub(super) fn delete_indices(&self, indices: &[String]) -> Result<Reply, StoreError> {
        if let Some(missing) = self.first_missing(indices)? {
            return Ok(missing);
        }
        for index in indices {
            let ids: Vec<String> = self.store.list(&docs(index))?.into_iter().map(|(id, _)| id).collect();
            let store_index = docs(index);
            let mut writes: Vec<Write<'_>> = ids
                .iter()
                .map(|id| Write { index: &store_index, id, source: None, expect: Expect::Any })
                .collect();
            writes.push(Write { index: INDICES, id: index, source: None, expect: Expect::Any });
            self.write(&writes)?;
        }
        Ok(Reply::new(200, json!({ "acknowledged": true })))
    }

    /// `GET /<indices>`: all must exist.
    pub(super) fn get_indices(&self, indices: &[String]) -> Result<Reply, StoreError> {
        if let Some(missing) = self.first_missing(indices)? {
            return Ok(missing);
        }
        let mut out = Map::new();
        for index in indices {
            out.insert(index.clone(), json!({ "aliases": {}, "mappings": {}, "settings": {} }));
        }
        Ok(Reply::new(200, Value::Object(out)))
    }
}
