//! A real headless Chromium for the UI tests, driven over WebDriver by a chromedriver this
//! module starts on a free loopback port. It fails, never skips, when either is missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long an element the test waits for may take to appear (the UI refreshes every 2 s).
const WAIT: Duration = Duration::from_secs(20);

/// A WebDriver session in its own browser profile; the driver is killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, with the flags this closed network needs.
    pub async fn start(shots: &Path) -> Browser {
        for binary in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: install Debian's chromium and chromium-driver (.ci/run does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ready(&url).await;
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities: Capabilities = serde_json::from_value(json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                    "--window-size=1360,1000",
                ],
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        }))
        .expect("capabilities");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
            .expect("a WebDriver session in headless Chromium");
        std::fs::create_dir_all(shots).expect("screenshot dir");
        Browser {
            client,
            driver,
            _profile: profile,
            shots: shots.to_path_buf(),
        }
    }

    /// The element `css` matches, once it is there.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(err) => {
                self.fail(&format!("no element {css:?} appeared: {err}"))
                    .await
            }
        }
    }

    /// Saves `failed.png` (what the page showed) and the console, then panics with `why`.
    async fn fail(&self, why: &str) -> ! {
        let _ = self.try_screenshot("failed").await;
        let console = self.console().await;
        panic!(
            "{why}\nconsole: {console:?}\n(see failed.png in {})",
            self.shots.display()
        )
    }

    /// Waits until the element `css` matches has text containing `wanted`; returns its text.
    pub async fn wait_for_text(&self, css: &str, wanted: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(wanted) {
                return text;
            }
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!(
                    "{css:?} never showed {wanted:?}; last text: {text:?}"
                ))
                .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until nothing matches `css`.
    pub async fn wait_gone(&self, css: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self
            .client
            .find_all(Locator::Css(css))
            .await
            .is_ok_and(|found| !found.is_empty())
        {
            if tokio::time::Instant::now() >= deadline {
                self.fail(&format!("{css:?} is still on the page")).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn click(&self, css: &str) {
        self.wait_for(css).await.click().await.expect("click");
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Saves a PNG of the viewport as `name.png` in the screenshot directory.
    pub async fn screenshot(&self, name: &str) {
        self.try_screenshot(name).await.expect("save a screenshot");
    }

    async fn try_screenshot(&self, name: &str) -> Result<(), String> {
        let png = self.client.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(self.shots.join(format!("{name}.png")), png).map_err(|e| e.to_string())
    }

    /// Fails the test on any console error or warning since the last look, then closes the
    /// browser: how every UI test ends.
    pub async fn finish_clean(&self) {
        let errors: Vec<_> = self
            .console()
            .await
            .into_iter()
            .filter(|(level, _, _)| level == "SEVERE" || level == "WARNING")
            .collect();
        assert!(errors.is_empty(), "console errors: {errors:?}");
        self.client
            .clone()
            .close()
            .await
            .expect("close the browser");
    }

    /// The browser console's entries since the last call: `(level, source, message)`.
    pub async fn console(&self) -> Vec<(String, String, String)> {
        let entries = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .expect("read the browser console");
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| {
                        let field = |key: &str| entry[key].as_str().unwrap_or_default().to_string();
                        (field("level"), field("source"), field("message"))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn wait_until_ready(url: &str) {
    let status = format!("{url}/status");
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(&status).await
            && let Ok(body) = response.json::<Value>().await
            && body["value"]["ready"] == true
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("chromedriver did not become ready at {url}");
}

/// chromedriver's console log (`goog:loggingPrefs`), which W3C WebDriver has no command for.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}
