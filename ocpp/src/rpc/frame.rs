//! The three OCPP-J frames (`[2,id,action,payload]`, `[3,id,payload]`,
//! `[4,id,code,description,details]`) and the RPC error codes.

use serde_json::{json, Value};

/// OCPP-J: a message id is at most 36 characters.
pub const MAX_MESSAGE_ID_LEN: usize = 36;

/// The RPC framework's error codes (OCPP-J 1.6 §4.2.3), with the frozen 1.6 spellings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    NotImplemented,
    NotSupported,
    InternalError,
    ProtocolError,
    SecurityError,
    FormationViolation,
    PropertyConstraintViolation,
    OccurenceConstraintViolation,
    TypeConstraintViolation,
    GenericError,
}

impl ErrorCode {
    /// The spelling we send (1.6's, misspellings included).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotImplemented => "NotImplemented",
            Self::NotSupported => "NotSupported",
            Self::InternalError => "InternalError",
            Self::ProtocolError => "ProtocolError",
            Self::SecurityError => "SecurityError",
            Self::FormationViolation => "FormationViolation",
            Self::PropertyConstraintViolation => "PropertyConstraintViolation",
            Self::OccurenceConstraintViolation => "OccurenceConstraintViolation",
            Self::TypeConstraintViolation => "TypeConstraintViolation",
            Self::GenericError => "GenericError",
        }
    }

    /// Reads a peer's code; also the spellings real peers send (`FormatViolation`,
    /// `OccurrenceConstraintViolation`). Anything else is a `GenericError`.
    #[must_use]
    pub fn parse(code: &str) -> Self {
        match code {
            "NotImplemented" => Self::NotImplemented,
            "NotSupported" => Self::NotSupported,
            "InternalError" => Self::InternalError,
            "ProtocolError" => Self::ProtocolError,
            "SecurityError" => Self::SecurityError,
            "FormationViolation" | "FormatViolation" => Self::FormationViolation,
            "PropertyConstraintViolation" => Self::PropertyConstraintViolation,
            "OccurenceConstraintViolation" | "OccurrenceConstraintViolation" => {
                Self::OccurenceConstraintViolation
            }
            "TypeConstraintViolation" => Self::TypeConstraintViolation,
            _ => Self::GenericError,
        }
    }
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    Call {
        id: String,
        action: String,
        payload: Value,
    },
    CallResult {
        id: String,
        payload: Value,
    },
    CallError {
        id: String,
        code: ErrorCode,
        description: String,
    },
}

/// A frame that could not be decoded. `answer_id` is set when the peer expects an answer
/// (a CALL, or a frame whose type could not be read): the CALLERROR goes to that id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameError {
    pub answer_id: Option<String>,
    pub code: ErrorCode,
    pub description: String,
}

/// The id used in a CALLERROR when the bad frame's own id cannot be read (as OCPP 2.0.1 says;
/// 1.6 is silent, and silence is not an answer).
const UNREADABLE_ID: &str = "-1";

/// Decodes one text frame. Never panics; every failure says what to answer.
pub fn parse_frame(text: &str) -> Result<Frame, FrameError> {
    let bad = |answer_id: Option<&str>, code, description: &str| FrameError {
        answer_id: answer_id.map(str::to_owned),
        code,
        description: description.to_owned(),
    };
    let value: Value = serde_json::from_str(text).map_err(|_| {
        bad(
            Some(UNREADABLE_ID),
            ErrorCode::FormationViolation,
            "not JSON",
        )
    })?;
    let Value::Array(items) = value else {
        return Err(bad(
            Some(UNREADABLE_ID),
            ErrorCode::FormationViolation,
            "not a JSON array",
        ));
    };
    let type_id = items.first().and_then(Value::as_u64);
    let id = items.get(1).and_then(Value::as_str);
    let id = id.filter(|id| !id.is_empty() && id.len() <= MAX_MESSAGE_ID_LEN);
    match (type_id, id) {
        (Some(2), Some(id)) => {
            let Some(action) = items.get(2).and_then(Value::as_str) else {
                return Err(bad(
                    Some(id),
                    ErrorCode::FormationViolation,
                    "CALL without an action",
                ));
            };
            if items.len() != 4 {
                return Err(bad(
                    Some(id),
                    ErrorCode::FormationViolation,
                    "CALL must have 4 elements",
                ));
            }
            Ok(Frame::Call {
                id: id.to_owned(),
                action: action.to_owned(),
                payload: items.get(3).cloned().unwrap_or(Value::Null),
            })
        }
        (Some(3), Some(id)) if items.len() == 3 => Ok(Frame::CallResult {
            id: id.to_owned(),
            payload: items.get(2).cloned().unwrap_or(Value::Null),
        }),
        (Some(4), Some(id)) if items.len() >= 4 => Ok(Frame::CallError {
            id: id.to_owned(),
            code: ErrorCode::parse(items.get(2).and_then(Value::as_str).unwrap_or("")),
            description: items
                .get(3)
                .and_then(Value::as_str)
                .unwrap_or("")
                .chars()
                .take(255)
                .collect(),
        }),
        // A broken answer to one of our calls: it must not be answered (a CALLERROR only
        // ever answers a CALL), the caller counts it.
        (Some(3 | 4), _) => Err(bad(
            None,
            ErrorCode::FormationViolation,
            "bad CALLRESULT/CALLERROR",
        )),
        (Some(2), None) => Err(bad(
            Some(UNREADABLE_ID),
            ErrorCode::FormationViolation,
            "CALL without a valid message id",
        )),
        _ => Err(bad(
            id.or(Some(UNREADABLE_ID)),
            ErrorCode::FormationViolation,
            "unknown message type",
        )),
    }
}

/// `[2,"id","Action",{…}]`
#[must_use]
pub fn encode_call(id: &str, action: &str, payload: &Value) -> String {
    json!([2, id, action, payload]).to_string()
}

/// `[3,"id",{…}]`
#[must_use]
pub fn encode_result(id: &str, payload: &Value) -> String {
    json!([3, id, payload]).to_string()
}

/// `[4,"id","code","description",{}]`
#[must_use]
pub fn encode_error(id: &str, code: ErrorCode, description: &str) -> String {
    json!([4, id, code.as_str(), description, {}]).to_string()
}
