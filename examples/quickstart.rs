//! The enishi tour, offline: what exists today, end to end, on embedded defaults.
//!
//! Starts the fake LINE server in-process, then uses the real `LineClient` against it:
//! profile checks, a personalised push, a multicast to every customer (split into calls of
//! 500 with one retry key each), a crash-safe re-send that LINE answers with 409 "already
//! accepted", and the fake server's record proving each customer got each message once.
//!
//! ```sh
//! cargo run --features testkit --example quickstart
//! ```
//!
//! (Linking, segments and campaigns join this tour as their modules land.)

use std::process::ExitCode;

use enishi::line::{LineClient, Message, MulticastRequest, PushRequest};
use enishi::testkit::{self as fake, FakeLine, FakeUser};
use enishi::{LineUserId, RetryKey};

#[tokio::main]
async fn main() -> ExitCode {
    match tour().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn tour() -> Result<(), Box<dyn std::error::Error>> {
    let customers = 1_234u64;
    println!("1. Starting a fake LINE server with {customers} friends of the shop's account");
    let mut builder = FakeLine::builder();
    for n in 0..customers {
        builder = builder.user(FakeUser::new(fake::user_id(n)).display_name(format!("お客様{n}")));
    }
    let line = builder.start().await?;
    println!("   listening at {}", line.api_base_url());

    let client = LineClient::builder()
        .channel_access_token(line.channel_access_token())
        .base_url(line.api_base_url())
        .data_base_url(line.data_base_url())
        .build()?;
    let users: Vec<LineUserId> =
        (0..customers).map(|n| fake::user_id(n).parse()).collect::<Result<_, _>>()?;

    println!("\n2. Checking a user ID the way LINE recommends: by reading the profile");
    let profile = client.profile(&users[0]).await?;
    println!("   {} -> {}", profile.user_id, profile.display_name);

    println!("\n3. A personalised push (retried safely with one X-Line-Retry-Key)");
    let key = RetryKey::generate();
    let text = format!("{}さん、ご購入ありがとうございます!", profile.display_name);
    let push = PushRequest::new(users[0].clone(), vec![Message::text(text)]).retry_key(key);
    let sent = client.push(push.clone()).await?;
    println!("   accepted, request id {:?}", sent.accepted.request_id.map(String::from));

    println!(
        "\n4. The process 'crashes' and re-sends the same push with the same key after restart"
    );
    let again = client.push(push).await?;
    println!(
        "   LINE answers 409: already_accepted={} (original request {:?}); nothing is sent twice",
        again.accepted.already_accepted,
        again.accepted.accepted_request_id.map(String::from)
    );

    println!(
        "\n5. A multicast to all {customers} customers: calls of at most 500, one retry key each"
    );
    let request =
        MulticastRequest::new(users.clone(), vec![Message::text("週末限定セール開催中!")]);
    let chunks = request.chunk_count();
    let report = client.multicast(request).await?;
    for chunk in &report.chunks {
        println!(
            "   chunk {} (recipients {:>4}..{:<4}) -> {}",
            chunk.index,
            chunk.recipients.start,
            chunk.recipients.end,
            match &chunk.result {
                Ok(a) =>
                    format!("accepted ({})", a.request_id.as_ref().map_or("-", |r| r.as_str())),
                Err(e) => format!("failed: {e}"),
            }
        );
    }
    println!(
        "   {} of {customers} recipients accepted in {chunks} calls",
        report.accepted_recipients()
    );

    println!("\n6. What the fake LINE server recorded");
    let duplicates = line.duplicate_deliveries();
    println!(
        "   deliveries: {}, customers who got a message twice: {}",
        line.delivery_count(),
        duplicates.len()
    );
    println!("   quota used: {} messages", line.quota_used());
    if !duplicates.is_empty() || !report.is_complete() {
        return Err("the tour did not deliver exactly once".into());
    }
    println!("\nDone. Next: docs/line.md for the client, docs/testkit.md for the fake server.");
    Ok(())
}
