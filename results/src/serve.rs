//! `splitbrain serve`: browse a store's runs over HTTP, like Jepsen's
//! `lein run serve`.
//!
//! `/` lists the runs under `store/<test>/<timestamp>/`, newest first, with
//! their verdict, time and target; every other path is a file or directory of
//! the store. Nothing outside the store is served: paths with `..` are
//! refused, and so are paths that resolve (through symlinks) outside it.

use crate::{escape, read_json, REPORT_HTML};
use std::fmt::Write;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tiny_http::{Header, Response, ResponseBox, Server};

/// Serves `store` on `listen` until the process ends. Blocking; one request
/// at a time, which is plenty for a person browsing reports.
pub fn serve(store: &Path, listen: SocketAddr) -> io::Result<()> {
    let root = store.canonicalize().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot open the store {}: {e}; pass the directory `splitbrain run --store` wrote to", store.display()),
        )
    })?;
    let server = Server::http(listen).map_err(|e| {
        io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("cannot listen on {listen}: {e}; pick another address with --listen"),
        )
    })?;
    for request in server.incoming_requests() {
        let response = respond(&root, request.url());
        // A client that went away is its own problem, not the server's.
        let _ = request.respond(response);
    }
    Ok(())
}

fn respond(root: &Path, url: &str) -> ResponseBox {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    if path == "/" {
        return html(200, &index(root));
    }
    let Some(relative) = decode(path) else {
        return html(
            400,
            "<p>Bad path: it must not contain <code>..</code> or escape the store.</p>",
        );
    };
    let target = root.join(relative);
    match target.canonicalize() {
        Ok(real) if real.starts_with(root) => {
            if real.is_dir() {
                html(200, &listing(root, &real))
            } else {
                match std::fs::File::open(&real) {
                    Ok(file) => Response::from_file(file)
                        .with_header(content_type(&real))
                        .boxed(),
                    Err(e) => html(
                        500,
                        &format!("<p>Cannot read the file: {}</p>", escape(&e.to_string())),
                    ),
                }
            }
        }
        Ok(_) => html(403, "<p>That path leads outside the store.</p>"),
        Err(_) => html(
            404,
            "<p>No such file in the store. <a href=\"/\">All runs</a></p>",
        ),
    }
}

/// The store-relative path of a URL path: percent-decoded, with every
/// component a plain name (no `..`, `.`, backslash or NUL).
fn decode(path: &str) -> Option<PathBuf> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    let mut relative = PathBuf::new();
    for part in text.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." || part.contains(['\\', '\0']) {
            return None;
        }
        relative.push(part);
    }
    Some(relative)
}

fn html(status: u16, body: &str) -> ResponseBox {
    let page = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Splitbrain runs</title><style>{STYLE}</style></head><body>{body}</body></html>"
    );
    Response::from_string(page)
        .with_status_code(status)
        .with_header(header("text/html; charset=utf-8"))
        .boxed()
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}th{background:#f2f2f2}\
.verdict{color:#fff;padding:0 .4em;border-radius:4px}.valid{background:#2c7a2c}.invalid{background:#c62828}\
.unknown{background:#b26a00}.running{background:#777}";

fn header(value: &str) -> Header {
    Header::from_bytes("Content-Type", value).expect("a valid header")
}

fn content_type(path: &Path) -> Header {
    header(match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("xml") => "application/xml",
        _ => "text/plain; charset=utf-8",
    })
}

/// One run found in the store.
struct Run {
    test: String,
    stamp: String,
    verdict: String,
    target: String,
    has_report: bool,
}

/// `store/<test>/<timestamp>/` directories, skipping the `latest` symlinks
/// (they would list the newest run twice).
fn runs(root: &Path) -> Vec<Run> {
    let dirs = |dir: &Path| -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect()
    };
    let mut runs = Vec::new();
    for (test, test_dir) in dirs(root) {
        for (stamp, dir) in dirs(&test_dir) {
            let results = read_json(&dir.join("results.json")).ok();
            let verdict = results
                .as_ref()
                .and_then(|r| r["verdict"].as_str().or(r["report"]["verdict"].as_str()))
                .unwrap_or("running")
                .to_string();
            let target = read_json(&dir.join("test.json"))
                .ok()
                .and_then(|t| t["options"]["target"].as_str().map(str::to_string))
                .unwrap_or_default();
            let has_report = dir.join(REPORT_HTML).is_file();
            runs.push(Run {
                test: test.clone(),
                stamp,
                verdict,
                target,
                has_report,
            });
        }
    }
    // Timestamps (`20261122T201500Z`) sort as text; newest first.
    runs.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.test.cmp(&b.test)));
    runs
}

fn index(root: &Path) -> String {
    let runs = runs(root);
    let mut out = format!(
        "<h1>Splitbrain runs</h1><p>{} runs in <code>{}</code></p>",
        runs.len(),
        escape(&root.display().to_string())
    );
    out.push_str(
        "<table><tr><th>time</th><th>test</th><th>target</th><th>verdict</th><th>files</th></tr>",
    );
    for run in &runs {
        let base = format!("/{}/{}/", url_part(&run.test), url_part(&run.stamp));
        let verdict = escape(&run.verdict);
        let report = if run.has_report {
            format!("<a href=\"{base}{REPORT_HTML}\">report</a> · ")
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><span class=\"verdict {verdict}\">{verdict}</span></td><td>{report}<a href=\"{base}\">files</a></td></tr>",
            escape(&pretty_time(&run.stamp)),
            escape(&run.test),
            escape(&run.target),
        );
    }
    out.push_str("</table>");
    out
}

/// `20261122T201500Z` as `2026-11-22 20:15:00 UTC`; other names unchanged.
fn pretty_time(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() >= 16 && b[8] == b'T' && b[15] == b'Z' && stamp.is_char_boundary(16) {
        format!(
            "{}-{}-{} {}:{}:{} UTC{}",
            &stamp[0..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15],
            &stamp[16..]
        )
    } else {
        stamp.to_string()
    }
}

/// A directory's entries as links.
fn listing(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path().is_dir())))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut out = format!(
        "<h1><a href=\"/\">runs</a> / {}</h1><ul>",
        escape(&relative.display().to_string())
    );
    let base: String = relative
        .iter()
        .map(|p| format!("/{}", url_part(&p.to_string_lossy())))
        .collect();
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        let _ = write!(
            out,
            "<li><a href=\"{base}/{}{slash}\">{}{slash}</a></li>",
            url_part(&name),
            escape(&name)
        );
    }
    out.push_str("</ul>");
    out
}

/// Percent-encodes a path component.
fn url_part(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_store() {
        assert_eq!(
            decode("/t/20261122T201500Z/report.html"),
            Some(PathBuf::from("t/20261122T201500Z/report.html"))
        );
        assert_eq!(decode("/a%20b/"), Some(PathBuf::from("a b")));
        assert_eq!(decode("/../etc/passwd"), None);
        assert_eq!(decode("/t/%2e%2e/%2e%2e/etc"), None);
        assert_eq!(decode("/t/%zz"), None);
        assert_eq!(url_part("a b/c"), "a%20b%2Fc");
        assert_eq!(
            pretty_time("20261122T201500Z-1"),
            "2026-11-22 20:15:00 UTC-1"
        );
    }
}
