//! What every command needs: the configuration folder, the output, and the
//! node it talks to — which node (`--node`, `ARCHY_NODE`, else the only or
//! first paired one) and a client pinned to it, logged in when the command
//! needs a session.

use anyhow::Context as _;
use archipelago_api::ErrorCode;
use archipelago_client::{Client, ClientError};

use crate::config::{ConfigDir, NodeEntry};
use crate::exit::ArchyError;
use crate::output::{Out, now_unix};

#[derive(Debug)]
pub struct Ctx {
    pub config: ConfigDir,
    pub json: bool,
    /// `--node` or `ARCHY_NODE`.
    pub node: Option<String>,
    pub out: Out,
}

impl Ctx {
    /// The node the command is for.
    pub fn node_entry(&self) -> anyhow::Result<NodeEntry> {
        let nodes = self.config.load_nodes()?;
        let entry = match &self.node {
            Some(name) => nodes
                .get(name)
                .ok_or_else(|| ArchyError::UnknownNode(name.clone()))?,
            None => nodes.nodes.first().ok_or(ArchyError::NoNodes)?,
        };
        Ok(entry.clone())
    }

    /// A client pinned to the node, without a session.
    pub fn client(entry: &NodeEntry) -> anyhow::Result<Client> {
        Client::new(&entry.address, entry.fingerprint)
            .with_context(|| format!("the address of node {} in nodes.json", entry.name))
    }

    /// A client pinned to the node, with its stored session.
    pub fn session_client(&self) -> anyhow::Result<(NodeEntry, Client)> {
        let entry = self.node_entry()?;
        let Some(session) = self.config.load_session(&entry.name)? else {
            return Err(ArchyError::NotLoggedIn { node: entry.name }.into());
        };
        if session.expires_at <= now_unix() {
            self.config.remove_session(&entry.name)?;
            return Err(ArchyError::SessionExpired { node: entry.name }.into());
        }
        let client = Self::client(&entry)?.with_token(session.token);
        Ok((entry, client))
    }

    /// An error of a call made with the stored session: when the node no
    /// longer knows the session, it is forgotten here too and the error says
    /// how to get a new one.
    pub fn call_error(&self, entry: &NodeEntry, err: ClientError) -> anyhow::Error {
        if err.code() == Some(ErrorCode::Unauthenticated) {
            let _ = self.config.remove_session(&entry.name);
            let node = &entry.name;
            return anyhow::Error::from(err).context(format!(
                "the session on {node} is no longer valid: run `archy --node {node} login`"
            ));
        }
        err.into()
    }
}
