//! The store's one listening connection: `LISTEN {t}_changes`, each notification turned into
//! a [`Wake`] for the followers. It reconnects after any failure (notifications sent while it
//! was down are lost: followers poll for those) and ends with the store.

use std::sync::Weak;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Socket};

use crate::store::postgres::conninfo::SslMode;
use crate::store::postgres::Inner;
use crate::store::sharing::Wake;

/// Pause between connection attempts.
const RETRY: Duration = Duration::from_secs(1);

/// See the module docs.
pub(crate) async fn listen(inner: Weak<Inner>) {
    loop {
        let Some(strong) = inner.upgrade() else { return };
        if strong.is_closed() {
            return;
        }
        let config = strong.conninfo.config.clone();
        let channel = strong.tables.channel.clone();
        let tls = if strong.conninfo.ssl == SslMode::Disable { None } else { strong.conninfo.tls().ok() };
        let disabled = strong.conninfo.ssl == SslMode::Disable;
        drop(strong);
        if disabled {
            session(&inner, &config, tokio_postgres::NoTls, &channel).await;
        } else if let Some(tls) = tls {
            session(&inner, &config, tls, &channel).await;
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One connection's life: listens until it fails or the store closes.
async fn session<T>(inner: &Weak<Inner>, config: &tokio_postgres::Config, tls: T, channel: &str)
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let Ok((client, mut connection)) = config.connect(tls).await else { return };
    let (notes, mut received) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notes.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    if client.batch_execute(&format!("LISTEN {channel}")).await.is_ok() {
        if let Some(strong) = inner.upgrade() {
            strong.listen_started();
        }
        while let Some(payload) = received.recv().await {
            let Some(strong) = inner.upgrade() else { break };
            if strong.is_closed() {
                break;
            }
            if let Some((space, seq)) = payload.rsplit_once(':') {
                if let Ok(seq) = seq.parse::<u64>() {
                    strong.wake(Wake { space: space.to_string(), seq });
                }
            }
        }
    }
    driver.abort();
}
