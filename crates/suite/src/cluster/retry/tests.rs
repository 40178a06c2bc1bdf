//! The retry layer against a scripted server: each request gets the next scripted answer.

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;

use super::*;

/// A scripted answer: a status and body, or a failed connection.
#[derive(Clone)]
enum Script {
    Answer(u16, &'static str),
    Throttled(u64),
    Broken,
}

/// The fake inner service: answers from the script, records what it was sent.
#[derive(Clone, Default)]
struct Fake {
    script: Arc<StdMutex<VecDeque<Script>>>,
    sent: Arc<StdMutex<Vec<(Method, String)>>>,
}

impl Fake {
    fn new(script: Vec<Script>) -> Fake {
        Fake {
            script: Arc::new(StdMutex::new(script.into())),
            sent: Arc::default(),
        }
    }
    fn sent(&self) -> Vec<(Method, String)> {
        self.sent.lock().unwrap().clone()
    }
}

impl Service<Request<Body>> for Fake {
    type Response = Answer;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, BoxError>> + Send>>;
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        self.sent
            .lock()
            .unwrap()
            .push((req.method().clone(), req.uri().to_string()));
        let next = self.script.lock().unwrap().pop_front();
        Box::pin(async move {
            match next {
                Some(Script::Answer(code, body)) => {
                    let mut r = Response::new(whole(Bytes::from_static(body.as_bytes())));
                    *r.status_mut() = StatusCode::from_u16(code)?;
                    Ok(r)
                }
                Some(Script::Throttled(secs)) => {
                    let mut r = Response::new(whole(Bytes::from_static(
                        br#"{"kind":"Status","reason":"TooManyRequests","message":"slow down","code":429}"#,
                    )));
                    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, secs.to_string().parse()?);
                    Ok(r)
                }
                Some(Script::Broken) | None => Err("connection reset by peer".into()),
            }
        })
    }
}

const UNAVAILABLE: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server is currently unable to handle the request","reason":"ServiceUnavailable","code":503}"#;
const TIMEOUT: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Timeout: request did not complete","reason":"Timeout","code":504}"#;
const EXISTS: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"cm\" already exists","reason":"AlreadyExists","code":409}"#;
const NOT_FOUND: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"cm\" not found","reason":"NotFound","code":404}"#;
const OURS: &str = r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","labels":{"kfconform.io/run":"r1","extra":"x"}}}"#;
const THEIRS: &str = r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","labels":{"kfconform.io/run":"other"}}}"#;
const CREATE: &str = r#"{"metadata":{"name":"cm","labels":{"kfconform.io/run":"r1"}}}"#;

async fn call(fake: &Fake, method: Method, uri: &str, body: &str) -> Result<(u16, String), String> {
    let mut svc = RetryLayer.layer(fake.clone());
    let mut req = Request::new(Body::from(body.as_bytes().to_vec()));
    *req.method_mut() = method;
    *req.uri_mut() = uri.parse().unwrap();
    let answer = svc.call(req).await.map_err(|e| e.to_string())?;
    let code = answer.status().as_u16();
    let bytes = answer.into_body().collect().await.unwrap().to_bytes();
    Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
}

const CMS: &str = "/api/v1/namespaces/ns/configmaps";

#[tokio::test(start_paused = true)]
async fn reads_are_retried_through_errors_and_broken_connections() {
    let fake = Fake::new(vec![
        Script::Answer(503, UNAVAILABLE),
        Script::Broken,
        Script::Answer(500, "{}"),
        Script::Answer(200, OURS),
    ]);
    let (code, body) = call(&fake, Method::GET, &format!("{CMS}/cm"), "")
        .await
        .unwrap();
    assert_eq!((code, body.as_str()), (200, OURS));
    assert_eq!(fake.sent().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let fake = Fake::new(vec![Script::Throttled(2), Script::Answer(200, "{}")]);
    let start = tokio::time::Instant::now();
    call(&fake, Method::GET, CMS, "").await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_create_that_meets_its_own_object_succeeded() {
    let fake = Fake::new(vec![
        Script::Answer(504, TIMEOUT),
        Script::Answer(409, EXISTS),
        Script::Answer(200, OURS),
    ]);
    let (code, body) = call(&fake, Method::POST, CMS, CREATE).await.unwrap();
    assert_eq!((code, body.as_str()), (201, OURS));
    assert_eq!(fake.sent()[2], (Method::GET, format!("{CMS}/cm")));
}

#[tokio::test(start_paused = true)]
async fn a_create_that_meets_another_object_conflicts() {
    let fake = Fake::new(vec![
        Script::Broken,
        Script::Answer(409, EXISTS),
        Script::Answer(200, THEIRS),
    ]);
    let (code, _) = call(&fake, Method::POST, CMS, CREATE).await.unwrap();
    assert_eq!(code, 409);
}

#[tokio::test(start_paused = true)]
async fn a_first_conflict_is_the_servers_verdict() {
    // No earlier try could have made the object: nothing is read back.
    let fake = Fake::new(vec![Script::Answer(409, EXISTS)]);
    let (code, _) = call(&fake, Method::POST, CMS, CREATE).await.unwrap();
    assert_eq!(code, 409);
    assert_eq!(fake.sent().len(), 1);
    // Nor after a try the server refused unhandled (429).
    let fake = Fake::new(vec![Script::Throttled(0), Script::Answer(409, EXISTS)]);
    let (code, _) = call(&fake, Method::POST, CMS, CREATE).await.unwrap();
    assert_eq!(code, 409);
    assert_eq!(fake.sent().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_delete_that_meets_404_after_an_unknown_outcome_succeeded() {
    let fake = Fake::new(vec![Script::Broken, Script::Answer(404, NOT_FOUND)]);
    let (code, body) = call(&fake, Method::DELETE, &format!("{CMS}/cm"), "")
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert!(body.contains(r#""status":"Success""#), "{body}");
}

#[tokio::test(start_paused = true)]
async fn updates_are_not_sent_twice_after_an_unknown_outcome() {
    let fake = Fake::new(vec![
        Script::Answer(504, TIMEOUT),
        Script::Answer(200, "{}"),
    ]);
    let (code, _) = call(&fake, Method::PUT, &format!("{CMS}/cm"), "{}")
        .await
        .unwrap();
    assert_eq!(code, 504);
    // A throttled update was not handled: it is sent again.
    let fake = Fake::new(vec![Script::Throttled(1), Script::Answer(200, "{}")]);
    let (code, _) = call(&fake, Method::PUT, &format!("{CMS}/cm"), "{}")
        .await
        .unwrap();
    assert_eq!(code, 200);
}

#[tokio::test(start_paused = true)]
async fn giving_up_names_what_each_try_met() {
    let mut script = vec![Script::Broken];
    script.extend(std::iter::repeat_n(Script::Answer(503, UNAVAILABLE), 7));
    let fake = Fake::new(script);
    let (code, body) = call(&fake, Method::GET, CMS, "").await.unwrap();
    assert_eq!(code, 503);
    let status: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        status["message"],
        "the server is currently unable to handle the request (the API server closed the \
         connection without a whole answer once, answered 503 ServiceUnavailable 7 times (8 tries))"
    );
    let fake = Fake::new(vec![Script::Broken; 8]);
    let err = call(&fake, Method::GET, CMS, "").await.unwrap_err();
    assert!(
        err.starts_with(
            "the API server closed the connection without a whole answer 8 times (8 tries); the last: connection reset by peer"
        ),
        "{err}"
    );
}
