//! OCPP-J remote procedure calls: the frames, the error codes, our one outstanding CALL and
//! the lenient decoding of payloads. Nothing here knows an OCPP version's actions.

mod call;
mod frame;
mod payload;

pub use call::{OutgoingCall, Outstanding};
pub use frame::{
    encode_call, encode_error, encode_result, parse_frame, ErrorCode, Frame, FrameError,
    MAX_MESSAGE_ID_LEN,
};
pub use payload::{decode, encode, DecodeError};
