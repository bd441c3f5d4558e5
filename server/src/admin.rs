//! `quarry admin`: the common identity tasks from a shell (add a user with a policy, list
//! users and keys, disable a key, add an account), done by calling the server's own IAM API over HTTP
//! with SigV4, exactly as an SDK would, so operators need no SDK.

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;

use crate::config::{DEFAULT_ROOT_PASSWORD, DEFAULT_ROOT_USER};
use crate::iam::sigv4;

/// `quarry admin` settings.
#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// The server's URL (`http://HOST:PORT`).
    #[arg(long, env = "QUARRY_ENDPOINT", default_value = "http://127.0.0.1:9000")]
    pub endpoint: String,

    /// Access key to sign with (the root user's, or a user allowed `iam:*`).
    #[arg(long, env = "QUARRY_ROOT_USER", hide_env_values = true)]
    pub access_key: Option<String>,

    /// Secret key to sign with.
    #[arg(long, env = "QUARRY_ROOT_PASSWORD", hide_env_values = true)]
    pub secret_key: Option<String>,

    /// Region to sign for.
    #[arg(long, env = "QUARRY_REGION", default_value = "us-east-1")]
    pub region: String,

    #[command(subcommand)]
    pub command: AdminCommand,
}

/// What to manage.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// IAM users.
    #[command(subcommand)]
    User(UserCommand),
    /// Access keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Accounts besides the default one (each owns its buckets and has its own root key).
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum AccountCommand {
    /// Create an account; prints its id, canonical id and root key (the secret once).
    Add {
        name: String,
        /// E-mail address (ACL grants may name the account by it).
        #[arg(long)]
        email: Option<String>,
    },
    /// List accounts.
    List,
    /// Delete an account that owns no bucket.
    Remove { account_id: String },
}

#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create a user and an access key (printed once); `--policy` sets its inline policy.
    Add {
        name: String,
        /// Policy JSON, or `@FILE` to read it from a file.
        #[arg(long)]
        policy: Option<String>,
        /// Groups to add the user to (they must exist).
        #[arg(long)]
        group: Vec<String>,
    },
    /// List users with their access keys and each key's status.
    List,
    /// Replace the user's inline policy `policy` (JSON or `@FILE`).
    Policy { name: String, policy: String },
    /// Delete a user with its keys, inline policies, attachments and group memberships.
    Remove { name: String },
}

#[derive(Debug, Clone, Subcommand)]
pub enum KeyCommand {
    /// Create another access key for a user (printed once).
    Add { user: String },
    /// Stop an access key from signing requests.
    Disable { access_key: String },
    /// Let a disabled access key sign again.
    Enable { access_key: String },
    /// Delete an access key.
    Remove { access_key: String },
}

/// The inline policy name `quarry admin` manages.
const POLICY_NAME: &str = "quarry-admin";

struct Client {
    host: String,
    access_key: String,
    secret_key: String,
    region: String,
}

/// The texts of every `<tag>...</tag>` in `xml`, unescaped.
fn tags(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(
            after[..j]
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        );
        rest = &after[j + close.len()..];
    }
    out
}

impl Client {
    fn new(args: &AdminArgs) -> anyhow::Result<Client> {
        let Some(host) = args.endpoint.strip_prefix("http://") else {
            bail!("the endpoint must be http://HOST:PORT (quarry admin does not speak TLS)");
        };
        let host = host.trim_end_matches('/').to_owned();
        let (access_key, secret_key) = match (&args.access_key, &args.secret_key) {
            (Some(a), Some(s)) => (a.clone(), s.clone()),
            (None, None) => (DEFAULT_ROOT_USER.to_owned(), DEFAULT_ROOT_PASSWORD.to_owned()),
            _ => bail!("give both --access-key and --secret-key (or neither, for the default root keys)"),
        };
        Ok(Client {
            host,
            access_key,
            secret_key,
            region: args.region.clone(),
        })
    }

    /// Call IAM action `action`; the response's XML, or the server's error as an error.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut body = format!("Action={action}&Version=2010-05-08");
        for (k, v) in params {
            body.push_str(&format!("&{}={}", sigv4::uri_encode(k, false), sigv4::uri_encode(v, false)));
        }
        let signed = sigv4::sign_post(
            &self.host,
            body.as_bytes(),
            &self.access_key,
            &self.secret_key,
            &self.region,
            "iam",
            time::OffsetDateTime::now_utc(),
        );
        let stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .with_context(|| format!("connecting to {}", self.host))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut req = http::Request::post("/")
            .header(http::header::HOST, &self.host)
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8");
        for (k, v) in signed {
            req = req.header(k, v);
        }
        let resp = sender.send_request(req.body(http_body_util::Full::new(Bytes::from(body)))?).await?;
        let status = resp.status();
        let text = String::from_utf8_lossy(&resp.into_body().collect().await?.to_bytes()).into_owned();
        if !status.is_success() {
            let code = tags(&text, "Code").into_iter().next().unwrap_or_else(|| status.to_string());
            let message = tags(&text, "Message").into_iter().next().unwrap_or_default();
            bail!("{action}: {code}: {message}");
        }
        Ok(text)
    }

    /// The user an access key belongs to.
    async fn owner(&self, key: &str) -> anyhow::Result<String> {
        for user in tags(&self.call("ListUsers", &[("MaxItems", "1000")]).await?, "UserName") {
            let keys = self.call("ListAccessKeys", &[("UserName", &user)]).await?;
            if tags(&keys, "AccessKeyId").iter().any(|k| k == key) {
                return Ok(user);
            }
        }
        bail!("no user has access key {key}")
    }
}

fn read_policy(arg: &str) -> anyhow::Result<String> {
    match arg.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}")),
        None => Ok(arg.to_owned()),
    }
}

fn print_key(xml: &str) {
    let id = tags(xml, "AccessKeyId").into_iter().next().unwrap_or_default();
    let secret = tags(xml, "SecretAccessKey").into_iter().next().unwrap_or_default();
    println!("access key: {id}\nsecret key: {secret}\n(the secret is shown only now)");
}

/// Run `quarry admin`.
pub async fn run(args: AdminArgs) -> anyhow::Result<()> {
    let c = Client::new(&args)?;
    let disable = matches!(args.command, AdminCommand::Key(KeyCommand::Disable { .. }));
    match args.command {
        AdminCommand::User(UserCommand::Add { name, policy, group }) => {
            let policy = policy.as_deref().map(read_policy).transpose()?;
            c.call("CreateUser", &[("UserName", &name)]).await?;
            if let Some(p) = &policy {
                c.call(
                    "PutUserPolicy",
                    &[("UserName", &name), ("PolicyName", POLICY_NAME), ("PolicyDocument", p)],
                )
                .await?;
            }
            for g in &group {
                c.call("AddUserToGroup", &[("GroupName", g), ("UserName", &name)]).await?;
            }
            let key = c.call("CreateAccessKey", &[("UserName", &name)]).await?;
            println!("user {name} created");
            print_key(&key);
        }
        AdminCommand::User(UserCommand::List) => {
            let users = c.call("ListUsers", &[("MaxItems", "1000")]).await?;
            println!("{:<32} {:<22} STATUS", "USER", "ACCESS KEY");
            for user in tags(&users, "UserName") {
                let keys = c.call("ListAccessKeys", &[("UserName", &user)]).await?;
                let (ids, states) = (tags(&keys, "AccessKeyId"), tags(&keys, "Status"));
                if ids.is_empty() {
                    println!("{user:<32} {:<22} -", "-");
                }
                for (id, st) in ids.iter().zip(&states) {
                    println!("{user:<32} {id:<22} {st}");
                }
            }
        }
        AdminCommand::User(UserCommand::Policy { name, policy }) => {
            let p = read_policy(&policy)?;
            c.call(
                "PutUserPolicy",
                &[("UserName", &name), ("PolicyName", POLICY_NAME), ("PolicyDocument", &p)],
            )
            .await?;
            println!("policy of {name} replaced");
        }
        AdminCommand::User(UserCommand::Remove { name }) => {
            let u = [("UserName", name.as_str())];
            for k in tags(&c.call("ListAccessKeys", &u).await?, "AccessKeyId") {
                c.call("DeleteAccessKey", &[("UserName", &name), ("AccessKeyId", &k)]).await?;
            }
            for p in tags(&c.call("ListUserPolicies", &u).await?, "member") {
                c.call("DeleteUserPolicy", &[("UserName", &name), ("PolicyName", &p)]).await?;
            }
            for arn in tags(&c.call("ListAttachedUserPolicies", &u).await?, "PolicyArn") {
                c.call("DetachUserPolicy", &[("UserName", &name), ("PolicyArn", &arn)]).await?;
            }
            for g in tags(&c.call("ListGroupsForUser", &u).await?, "GroupName") {
                c.call("RemoveUserFromGroup", &[("GroupName", &g), ("UserName", &name)]).await?;
            }
            c.call("DeleteUser", &u).await?;
            println!("user {name} removed");
        }
        AdminCommand::Key(KeyCommand::Add { user }) => {
            print_key(&c.call("CreateAccessKey", &[("UserName", &user)]).await?);
        }
        AdminCommand::Key(KeyCommand::Disable { access_key } | KeyCommand::Enable { access_key }) => {
            let status = if disable { "Inactive" } else { "Active" };
            let user = c.owner(&access_key).await?;
            c.call(
                "UpdateAccessKey",
                &[("UserName", &user), ("AccessKeyId", &access_key), ("Status", status)],
            )
            .await?;
            println!("access key {access_key} of {user} is now {status}");
        }
        AdminCommand::Account(AccountCommand::Add { name, email }) => {
            let mut params = vec![("AccountName", name.as_str())];
            if let Some(e) = &email {
                params.push(("Email", e));
            }
            let xml = c.call("CreateAccount", &params).await?;
            let one = |t: &str| tags(&xml, t).into_iter().next().unwrap_or_default();
            println!("account {name} created");
            println!("account id: {}\ncanonical id: {}", one("AccountId"), one("CanonicalUserId"));
            print_key(&xml);
        }
        AdminCommand::Account(AccountCommand::List) => {
            let xml = c.call("ListAccounts", &[]).await?;
            println!("{:<14} {:<24} {:<22} EMAIL", "ACCOUNT ID", "NAME", "ACCESS KEY");
            let (ids, names, keys, emails) = (
                tags(&xml, "AccountId"),
                tags(&xml, "AccountName"),
                tags(&xml, "AccessKeyId"),
                tags(&xml, "Email"),
            );
            for (((id, name), key), email) in ids.iter().zip(&names).zip(&keys).zip(&emails) {
                println!("{id:<14} {name:<24} {key:<22} {email}");
            }
        }
        AdminCommand::Account(AccountCommand::Remove { account_id }) => {
            c.call("DeleteAccount", &[("AccountId", &account_id)]).await?;
            println!("account {account_id} removed");
        }
        AdminCommand::Key(KeyCommand::Remove { access_key }) => {
            let user = c.owner(&access_key).await?;
            c.call("DeleteAccessKey", &[("UserName", &user), ("AccessKeyId", &access_key)])
                .await?;
            println!("access key {access_key} of {user} removed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_found_and_unescaped() {
        let xml = "<R><member>a&amp;b</member><member>&lt;c&gt;</member><Code>X</Code></R>";
        assert_eq!(tags(xml, "member"), ["a&b", "<c>"]);
        assert_eq!(tags(xml, "Code"), ["X"]);
        assert!(tags(xml, "None").is_empty());
    }
}
