//! Talking to shard nodes over HTTP: their identity (checked against the registry before
//! anything is sealed to it), fragment delivery and release.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cifer_core::EncapsulationKey;
use serde_json::Value;

/// A shard node as the registry names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRef {
    /// Its id.
    pub id: u32,
    /// Its registered HTTP endpoint.
    pub endpoint: String,
    /// The registered `keccak256` of its transport key.
    pub key_hash: [u8; 32],
}

/// The HTTP client of the black box, with the node keys it has checked.
pub struct Nodes {
    client: reqwest::Client,
    keys: Mutex<HashMap<(u32, [u8; 32]), EncapsulationKey>>,
    /// Request URLs by endpoint and path, parsed once: parsing (with its IDNA pass) on
    /// every request to five nodes was ~1 % of the black box's instructions.
    urls: Mutex<HashMap<String, HashMap<&'static str, reqwest::Url>>>,
}

impl core::fmt::Debug for Nodes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Nodes").finish_non_exhaustive()
    }
}

fn url(endpoint: &str, path: &str) -> Result<reqwest::Url, String> {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err("registered endpoint is not an http(s) URL".into());
    }
    reqwest::Url::parse(&format!("{}{path}", endpoint.trim_end_matches('/')))
        .map_err(|_| "registered endpoint is not a valid URL".to_owned())
}

impl Nodes {
    /// A client whose every call times out after `timeout`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self { client, keys: Mutex::new(HashMap::new()), urls: Mutex::new(HashMap::new()) })
    }

    /// `endpoint` + `path` as a parsed URL, from the cache when it was parsed before. The
    /// cache holds the endpoints registered on chain (a handful per cluster); it is emptied
    /// if it ever grows past 1,024 of them.
    fn url(&self, endpoint: &str, path: &'static str) -> Result<reqwest::Url, String> {
        let mut urls = self.urls.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(u) = urls.get(endpoint).and_then(|paths| paths.get(path)) {
            return Ok(u.clone());
        }
        let parsed = url(endpoint, path)?;
        if urls.len() >= 1024 {
            urls.clear();
        }
        urls.entry(endpoint.to_owned()).or_default().insert(path, parsed.clone());
        Ok(parsed)
    }

    /// The node's transport key, fetched from `GET /v1/identity` once and kept only if it
    /// hashes to the registered `key_hash` and the node says it is `id`.
    ///
    /// # Errors
    /// A reason naming what failed (no secret involved).
    pub async fn key(&self, node: &NodeRef) -> Result<EncapsulationKey, String> {
        let slot = (node.id, node.key_hash);
        if let Some(k) = self.lock().get(&slot) {
            return Ok(k.clone());
        }
        let body: Value = self
            .client
            .get(self.url(&node.endpoint, "/v1/identity")?)
            .send()
            .await
            .map_err(|e| format!("identity: {}", e.without_url()))?
            .json()
            .await
            .map_err(|e| format!("identity: {}", e.without_url()))?;
        if body["nodeId"].as_u64() != Some(u64::from(node.id)) {
            return Err("identity: the node reports another node id".into());
        }
        let bytes = body["encapsulationKey"]
            .as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .ok_or("identity: no encapsulationKey")?;
        let key = EncapsulationKey::from_bytes_checked(&bytes, &node.key_hash)
            .map_err(|_| "identity: the served key is not the registered one".to_owned())?;
        self.lock().insert(slot, key.clone());
        Ok(key)
    }

    /// `POST {endpoint}{path}` with `body`; the status and the JSON answer.
    ///
    /// # Errors
    /// A reason for transport failures.
    pub async fn post(
        &self,
        endpoint: &str,
        path: &'static str,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let body = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let (status, bytes) = self.post_bytes(endpoint, path, body.into()).await?;
        let value = serde_json::from_slice(&bytes).map_err(|e| format!("answer: {e}"))?;
        Ok((status, value))
    }

    /// [`Nodes::post`] with a body already serialized (a fan-out serializes once) and the
    /// answer's bytes left for the caller to parse into its own type, run to
    /// completion on its own task: if the caller stops waiting (the gather had its
    /// threshold), the answer is still read in full, so the connection goes back to the
    /// pool instead of being torn down mid-response and reopened by the next request. The
    /// client's timeout bounds the task.
    ///
    /// # Errors
    /// A reason for transport failures.
    pub async fn post_bytes(
        &self,
        endpoint: &str,
        path: &'static str,
        body: axum::body::Bytes,
    ) -> Result<(u16, axum::body::Bytes), String> {
        let request = self
            .client
            .post(self.url(endpoint, path)?)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let exchange = tokio::spawn(async move {
            let response = request.send().await.map_err(|e| e.without_url().to_string())?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await.map_err(|e| e.without_url().to_string())?;
            Ok::<_, String>((status, bytes))
        });
        exchange.await.map_err(|e| format!("exchange task: {e}"))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, [u8; 32]), EncapsulationKey>> {
        self.keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn request_urls_are_parsed_once_and_refused_when_not_http() {
        let nodes = Nodes::new(Duration::from_secs(1)).unwrap();
        let a = nodes.url("http://127.0.0.1:8101/", "/v1/release").unwrap();
        assert_eq!(a.as_str(), "http://127.0.0.1:8101/v1/release");
        assert_eq!(nodes.url("http://127.0.0.1:8101/", "/v1/release").unwrap(), a);
        let b = nodes.url("http://127.0.0.1:8101/", "/v1/identity").unwrap();
        assert_eq!(b.as_str(), "http://127.0.0.1:8101/v1/identity");
        assert_eq!(nodes.urls.lock().unwrap().len(), 1, "one endpoint, two paths");
        assert!(nodes.url("ftp://127.0.0.1:8101", "/v1/release").is_err());
        assert!(nodes.url("http://[::1", "/v1/release").is_err());
        assert_eq!(nodes.urls.lock().unwrap().len(), 1, "refusals are not kept");
    }
}
