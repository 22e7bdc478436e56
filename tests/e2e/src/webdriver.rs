//! Just enough of the W3C `WebDriver` protocol to drive the desktop app
//! through tauri-driver: a session on the app's binary, scripts, elements
//! found by CSS selector (the frontend's `data-testid`s), clicks, typing,
//! text and screenshots. JSON over HTTP on loopback.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C `WebDriver` names an element reference by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a click or typing waits for its element to become usable.
const INTERACT_WAIT: Duration = Duration::from_secs(5);

/// A session with one app window.
#[derive(Debug)]
pub struct WebDriver {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
}

/// An element of the page.
#[derive(Debug, Clone)]
pub struct Element {
    id: String,
    /// The selector it was found by, for messages.
    selector: String,
}

impl WebDriver {
    /// Starts `application` through the `WebDriver` server at `server`
    /// (`http://127.0.0.1:4444`).
    pub async fn start(server: &str, application: &Path) -> Result<Self> {
        let http = http_client()?;
        let body = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "wry",
                "tauri:options": { "application": application },
            }}
        });
        let value = send(
            &http,
            reqwest::Method::POST,
            &format!("{server}/session"),
            Some(body),
        )
        .await
        .context("starting a WebDriver session on the app")?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("the new session has no id: {value}"))?;
        Ok(Self {
            http,
            session: format!("{server}/session/{id}"),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        send(&self.http, method, &format!("{}{path}", self.session), body).await
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page
    /// and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Waits until the page has loaded and Tauri's API is there — before
    /// that, elements may not exist yet and commands may not work.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let script =
            "return document.readyState === 'complete' && typeof window.__TAURI__ === 'object'";
        let deadline = Instant::now() + timeout;
        loop {
            if self.execute(script, json!([])).await.ok() == Some(Value::Bool(true)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the page was not ready (loaded, window.__TAURI__) within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The first element matching `selector`, if any now.
    pub async fn find(&self, selector: &str) -> Result<Option<Element>> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": selector })),
            )
            .await;
        match found {
            Ok(value) => {
                let id = value[ELEMENT_KEY]
                    .as_str()
                    .ok_or_else(|| anyhow!("not an element reference: {value}"))?;
                Ok(Some(Element {
                    id: id.to_owned(),
                    selector: selector.to_owned(),
                }))
            }
            Err(e) if e.to_string().contains("no such element") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for an element matching `selector`.
    pub async fn wait_for(&self, selector: &str, timeout: Duration) -> Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(element) = self.find(selector).await? {
                return Ok(element);
            }
            if Instant::now() > deadline {
                let body = self
                    .execute(
                        "return document.body ? document.body.innerText : ''",
                        json!([]),
                    )
                    .await
                    .unwrap_or_default();
                bail!("no element `{selector}` within {timeout:?}; the page says: {body}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element with `data-testid` `id`, waited for.
    pub async fn testid(&self, id: &str, timeout: Duration) -> Result<Element> {
        self.wait_for(&format!("[data-testid=\"{id}\"]"), timeout)
            .await
    }

    /// Clicks the element, waiting a moment for it to become clickable (a
    /// dialog still fading in).
    pub async fn click(&self, element: &Element) -> Result<()> {
        self.interact(element, "click", json!({}))
            .await
            .with_context(|| format!("clicking `{}`", element.selector))
    }

    /// Types `text` into an input, waiting a moment for it to take focus.
    pub async fn type_text(&self, element: &Element, text: &str) -> Result<()> {
        self.interact(element, "value", json!({ "text": text }))
            .await
            .with_context(|| format!("typing into `{}`", element.selector))
    }

    /// `POST /element/<id>/<action>`, retried for up to [`INTERACT_WAIT`]
    /// while the element is not interactable yet, and found again by its
    /// selector when the page replaced it.
    async fn interact(&self, element: &Element, action: &str, body: Value) -> Result<()> {
        let deadline = Instant::now() + INTERACT_WAIT;
        let mut id = element.id.clone();
        loop {
            let done = self
                .call(
                    reqwest::Method::POST,
                    &format!("/element/{id}/{action}"),
                    Some(body.clone()),
                )
                .await;
            let Err(error) = done else {
                return Ok(());
            };
            let text = error.to_string();
            let stale = text.contains("stale element reference");
            if Instant::now() > deadline || !(stale || text.contains("not interactable")) {
                return Err(error);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            if stale {
                if let Some(again) = self.find(&element.selector).await? {
                    id = again.id;
                }
            }
        }
    }

    /// Empties an input.
    pub async fn clear(&self, element: &Element) -> Result<()> {
        self.interact(element, "clear", json!({}))
            .await
            .with_context(|| format!("clearing `{}`", element.selector))
    }

    /// The element's visible text.
    pub async fn text(&self, element: &Element) -> Result<String> {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/text", element.id),
                None,
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// A DOM property of the element (`value` of an input).
    pub async fn property(&self, element: &Element, name: &str) -> Result<Value> {
        self.call(
            reqwest::Method::GET,
            &format!("/element/{}/property/{name}", element.id),
            None,
        )
        .await
    }

    /// An attribute of the element (`data-phase`, `href`), None when absent.
    pub async fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{}/attribute/{name}", element.id),
                None,
            )
            .await?;
        Ok(value.as_str().map(str::to_owned))
    }

    /// Runs `script` (a function body whose last argument is the callback
    /// to call with the result) and waits for that result: for scripts
    /// that await a promise.
    pub async fn execute_async(&self, script: &str, args: Value) -> Result<Value> {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
        .await
    }

    /// Saves a PNG of the window to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let value = self.call(reqwest::Method::GET, "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .context("the screenshot is not base64")?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Ends the session (and with it the app).
    pub async fn quit(&self) -> Result<()> {
        self.call(reqwest::Method::DELETE, "", None).await?;
        Ok(())
    }
}

/// An HTTP client for loopback: no proxies, no TLS in use.
fn http_client() -> Result<reqwest::Client> {
    // The workspace's reqwest brings no TLS provider of its own; it is
    // never used here (plain http), but the builder wants one.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(rustls::RootCertStore::empty())
    .with_no_client_auth();
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()?)
}

/// One `WebDriver` request; returns its `value`, or the `WebDriver` error.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(&body)?);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let text = response.text().await?;
    let parsed: Value = serde_json::from_str(&text)
        .with_context(|| format!("{method} {url}: HTTP {status}, not JSON: {text}"))?;
    let value = parsed.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() || value.get("error").is_some_and(|e| !e.is_null()) {
        bail!(
            "{method} {url}: {}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"].as_str().unwrap_or(&text)
        );
    }
    Ok(value)
}
