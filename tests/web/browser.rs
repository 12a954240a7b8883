//! Headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`, installed by tests/run.sh): a chromedriver on a free
//! port, a fantoccini session that accepts the test certificate, and
//! screenshots of the pages under target/tmp/web-screenshots.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::slapd::free_port;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    driver: Child,
    /// TMPDIR of chromedriver and Chromium: their profiles and scratch
    /// files go here and are removed with it.
    _tmp: tempfile::TempDir,
    pub client: Client,
    /// https://127.0.0.1:PORT of the console.
    pub base: String,
}

/// Where screenshots go; docs/images holds the copies the guide shows.
pub fn screenshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-screenshots")
}

impl Browser {
    pub async fn start(base: &str) -> Browser {
        for tool in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(tool).exists(),
                "{tool} is needed for the browser tests; install it with: apt-get install chromium chromium-driver"
            );
        }
        let port = free_port();
        let tmp = tempfile::Builder::new().prefix("radotp-chromium-").tempdir().expect("temp dir");
        // Its own process group, so that Chromium goes with chromedriver
        // even when a test fails before closing the session.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("TMPDIR", tmp.path())
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("acceptInsecureCerts".into(), serde_json::json!(true));
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900"]
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session with chromedriver");
        Browser { driver, _tmp: tmp, client, base: base.to_string() }
    }

    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("navigate");
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("field {css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("element {css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks something that loads a page (a link, a form's button) and
    /// waits until the new page replaced the old one.
    pub async fn go(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.expect("a page");
        self.click(css).await;
        let started = Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(started.elapsed() < Duration::from_secs(20), "clicking {css} loaded no page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("body")).await.expect("a page");
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.expect("find").is_empty()
    }

    pub async fn text(&self, css: &str) -> String {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element.text().await.expect("text"),
            Err(e) => {
                let url = self.client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
                let source = self.client.source().await.unwrap_or_default();
                panic!("element {css}: {e}\nat {url}:\n{source}")
            }
        }
    }

    /// The visible text of the page.
    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.expect("url").path().to_string()
    }

    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("save screenshot");
    }

    /// Signs in with the three fields of /login.
    pub async fn login(&self, user: &str, password: &str, otp: &str) {
        self.open("/login").await;
        self.fill("input[name=username]", user).await;
        self.fill("input[name=password]", password).await;
        self.fill("input[name=otp]", otp).await;
        self.go("#sign-in").await;
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    /// Kills chromedriver's process group: chromedriver and Chromium.
    fn drop(&mut self) {
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.wait();
    }
}
