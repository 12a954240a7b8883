//! Connections to the directory: the URLs in order, the two pools (service
//! searches, users' binds), one probe a second while every server is down,
//! and running an operation on a pooled connection with one retry.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Instant;

use ldap3::LdapConnAsync;

use super::*;

impl LdapDirectory {
    /// URL indexes in the order to try: those not failed lately first.
    pub(super) fn url_order(&self) -> Vec<usize> {
        let down = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        let recently_down = |i: usize| down[i].is_some_and(|t| t.elapsed() < DOWN_RETRY);
        let (mut up, failed): (Vec<usize>, Vec<usize>) = (0..self.urls.len()).partition(|&i| !recently_down(i));
        up.extend(failed);
        up
    }

    /// Whether every URL failed within [`DOWN_RETRY`].
    pub(super) fn all_down(&self) -> bool {
        let down = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        down.iter().all(|since| since.is_some_and(|t| t.elapsed() < DOWN_RETRY))
    }

    pub(super) fn mark_down(&self, url: usize, reason: &str) {
        let mut down = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if down[url].is_none() {
            tracing::warn!(url = %self.urls[url], "LDAP server unusable: {reason}");
        }
        down[url] = Some(Instant::now());
    }

    pub(super) fn mark_up(&self, url: usize) {
        let mut down = self.down_since.lock().unwrap_or_else(|p| p.into_inner());
        if down[url].take().is_some() {
            tracing::info!(url = %self.urls[url], "LDAP server answers again");
        }
    }

    /// A new connection: the URLs in order, each with TLS as configured and,
    /// for the search pool, the service bind.
    pub(super) async fn connect(&self, service_bound: bool) -> Result<Connection, DirectoryError> {
        if self.all_down() {
            let mut last = self.last_probe.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < PROBE_INTERVAL) {
                return Err(DirectoryError::Unavailable(
                    "every LDAP server failed lately; the next try is under way or due within a second".into(),
                ));
            }
            *last = Some(Instant::now());
        }
        let mut failures = Vec::new();
        for url in self.url_order() {
            match self.connect_to(url, service_bound).await {
                Ok(ldap) => {
                    self.opened.fetch_add(1, Ordering::Relaxed);
                    // A TCP connection alone proves nothing (a hung server
                    // accepts them): the service bind's answer does.
                    if service_bound && self.service_bind.is_some() {
                        self.mark_up(url);
                    }
                    return Ok(Connection { ldap, url, opened: Instant::now() });
                }
                Err(reason) => {
                    self.mark_down(url, &reason);
                    failures.push(format!("{}: {reason}", self.urls[url]));
                }
            }
        }
        Err(DirectoryError::Unavailable(failures.join("; ")))
    }

    pub(super) async fn connect_to(&self, url: usize, service_bound: bool) -> Result<Ldap, String> {
        let (connection, mut ldap) = LdapConnAsync::with_settings(self.connect_settings.clone(), &self.urls[url])
            .await
            .map_err(|e| explain_tls(&describe(&e), &self.urls[url]))?;
        let name = self.urls[url].clone();
        tokio::spawn(async move {
            if let Err(e) = connection.drive().await {
                tracing::debug!(url = %name, "LDAP connection ended: {e}");
            }
        });
        if let (true, Some((dn, password))) = (service_bound, &self.service_bind) {
            let password = std::str::from_utf8(password.expose()).map_err(|_| "bind password is not UTF-8")?;
            let bind = ldap.with_timeout(self.timeout).simple_bind(dn, password);
            let result = tokio::time::timeout(self.timeout, bind)
                .await
                .map_err(|_| "no answer to the service bind in time".to_string())?
                .map_err(|e| describe(&e))?;
            if result.rc != 0 {
                return Err(format!("service bind as {dn} refused: {}", describe_result(&result)));
            }
        }
        Ok(ldap)
    }

    /// Runs `op` on a connection of `pool`: a pooled one if any, else a new
    /// one; once more on a new connection if a pooled one turns out broken.
    pub(super) async fn with_connection<T, F, Fut>(&self, pool: &Pool, mut op: F) -> Result<T, DirectoryError>
    where
        F: FnMut(Ldap) -> Fut,
        Fut: Future<Output = Attempt<T>>,
    {
        let work = async {
            let _permit = pool
                .permits
                .acquire()
                .await
                .map_err(|_| DirectoryError::Unavailable("LDAP directory closed".into()))?;
            let mut pooled = pool.take_idle();
            loop {
                let reused = pooled.is_some();
                let connection = match pooled.take() {
                    Some(c) => c,
                    None => self.connect(pool.service_bound).await?,
                };
                let outcome = tokio::time::timeout(self.timeout, op(connection.ldap.clone())).await;
                let reason = match outcome {
                    Ok(Ok(value)) => {
                        self.mark_up(connection.url);
                        self.put_back(pool, connection);
                        return Ok(value);
                    }
                    Ok(Err(Failure::Answer(e))) => {
                        self.mark_up(connection.url);
                        self.put_back(pool, connection);
                        return Err(e);
                    }
                    Ok(Err(Failure::Broken(reason))) => reason,
                    Err(_) => format!("no answer within {} ms", self.timeout.as_millis()),
                };
                if reused {
                    tracing::debug!(url = %self.urls[connection.url], "pooled LDAP connection failed ({reason}); reconnecting");
                    continue;
                }
                self.mark_down(connection.url, &reason);
                return Err(DirectoryError::Unavailable(format!("{}: {reason}", self.urls[connection.url])));
            }
        };
        tokio::time::timeout(self.deadline(), work).await.unwrap_or_else(|_| {
            Err(DirectoryError::Unavailable(format!(
                "no answer from the LDAP directory within {} ms",
                self.deadline().as_millis()
            )))
        })
    }

    pub(super) fn put_back(&self, pool: &Pool, mut connection: Connection) {
        let max_age = if connection.url == 0 { MAX_CONNECTION_AGE } else { DOWN_RETRY };
        if connection.ldap.is_closed() || connection.opened.elapsed() > max_age {
            return;
        }
        let mut idle = pool.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < pool.capacity {
            idle.push(connection);
        }
    }
}

impl Pool {
    pub(super) fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(mut connection) = idle.pop() {
            if !connection.ldap.is_closed() {
                return Some(connection);
            }
        }
        None
    }
}
