//! Server-side import sources: `importpath` / `localPath` (files under configured import
//! roots only) and `fetchURL` (http(s) to public addresses only, unless configured), each
//! turned into a stream for [`super::ingest::receive`].

use super::ingest::ClientStreamError;
use super::{OpsError, OpsResult};
use crate::domain::Invalid;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type Source = BoxStream<'static, Result<Bytes, ClientStreamError>>;

fn invalid(msg: impl Into<String>) -> OpsError {
    OpsError::Invalid(Invalid::new(msg))
}

/// The file at `requested` if, with every link and `..` resolved, it lies inside one of
/// `roots`: its canonical path, its name, and a stream of it.
pub async fn local_file(requested: &str, roots: &[PathBuf]) -> OpsResult<(PathBuf, String, Source)> {
    if roots.is_empty() {
        return Err(invalid(
            "server-side import is not enabled on this server (--import-roots); upload the file as multipart/form-data",
        ));
    }
    if requested.contains('\0') {
        return Err(invalid("the import path contains a NUL byte"));
    }
    let path = tokio::fs::canonicalize(requested)
        .await
        .map_err(|e| invalid(format!("the import path \"{requested}\" cannot be read: {e}")))?;
    let mut inside = false;
    for root in roots {
        if let Ok(root) = tokio::fs::canonicalize(root).await {
            inside |= path.starts_with(&root) && path != root;
        }
    }
    if !inside {
        return Err(invalid(format!(
            "the import path \"{requested}\" is not inside an import root"
        )));
    }
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| invalid(format!("cannot read \"{requested}\": {e}")))?;
    if !meta.is_file() {
        return Err(invalid(format!("\"{requested}\" is not a file")));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| invalid(format!("cannot open \"{requested}\": {e}")))?;
    let stream = tokio_util::io::ReaderStream::new(file)
        .map(|r| r.map_err(|e| ClientStreamError(e.to_string())))
        .boxed();
    Ok((path, name, stream))
}

/// Whether an address is one the server must not be aimed at by default.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (o[1] == 18 || o[1] == 19))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || v6.to_ipv4_mapped().is_some_and(|v4| is_internal(IpAddr::V4(v4)))
        }
    }
}

/// Starts downloading `url`: http(s) only, to an address checked once and then pinned
/// (so DNS cannot change it between the check and the connection), no redirects, within
/// `timeout`. Returns the file name (last path segment) and the body stream.
pub async fn fetch(url: &str, allow_internal: bool, timeout: Duration) -> OpsResult<(String, Source)> {
    let parsed = url::Url::parse(url).map_err(|e| invalid(format!("fetchURL \"{url}\" is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("fetchURL must be an http or https URL"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| invalid("fetchURL has no host"))?
        .to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
        .await
        .map_err(|e| invalid(format!("fetchURL host \"{host}\" cannot be resolved: {e}")))?
        .collect();
    let addr = addrs
        .first()
        .copied()
        .ok_or_else(|| invalid(format!("fetchURL host \"{host}\" has no address")))?;
    if !allow_internal && addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(invalid(format!(
            "fetchURL \"{host}\" resolves to an internal address ({}); only public addresses may be fetched",
            addr.ip()
        )));
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&lookup_host, addr)
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| invalid(format!("cannot fetch: {e}")))?;
    let resp = client
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| invalid(format!("fetching \"{url}\" failed: {e}")))?;
    if !resp.status().is_success() {
        return Err(invalid(format!(
            "fetching \"{url}\" answered HTTP {} (redirects are not followed)",
            resp.status()
        )));
    }
    let name = parsed
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_encoding::percent_decode_str(&s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| "download".into());
    let stream = resp
        .bytes_stream()
        .map(|r| r.map_err(|e| ClientStreamError(e.to_string())))
        .boxed();
    Ok((name, stream))
}

/// Removes a moved (`localPath`) source after its asset was committed.
pub async fn remove_source(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await {
        tracing::warn!(path = %path.display(), error = %e, "could not remove an imported localPath file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(a.parse().unwrap()), "{a}");
        }
        for a in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_internal(a.parse().unwrap()), "{a}");
        }
    }
}
