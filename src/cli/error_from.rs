//! The [`ErrorCode`] of the errors other modules report with a `code()` of their own (auth,
//! credentials, server URL, drain stop, contract gate). The matches are exhaustive, so a new
//! variant does not compile until it has a code here; the tests check that each mapping gives
//! the very string the module's own `code()` gives.

use super::error_code::ErrorCode;
use crate::contract::Reason;
use crate::saas::batch::DrainStop;
use crate::saas::credentials::CredentialsError;
use crate::saas::session::AuthError;
use crate::saas::settings::UrlError;

impl From<&CredentialsError> for ErrorCode {
    fn from(e: &CredentialsError) -> Self {
        match e {
            CredentialsError::Malformed { .. } | CredentialsError::Incomplete { .. } => {
                Self::CredentialsInvalid
            }
            CredentialsError::Io { .. } | CredentialsError::LockTimeout { .. } => {
                Self::CredentialsUnavailable
            }
        }
    }
}

impl From<&UrlError> for ErrorCode {
    fn from(e: &UrlError) -> Self {
        match e {
            UrlError::Insecure { .. } => Self::InsecureServerUrl,
            UrlError::Malformed { .. } | UrlError::Unsupported { .. } => Self::InvalidServerUrl,
        }
    }
}

impl From<&AuthError> for ErrorCode {
    fn from(e: &AuthError) -> Self {
        match e {
            AuthError::NotAuthenticated { .. } | AuthError::OtherServer { .. } => {
                Self::NotAuthenticated
            }
            AuthError::SessionExpired { .. } => Self::SessionExpired,
            AuthError::InvalidLogin => Self::InvalidLogin,
            AuthError::Credentials(e) => e.into(),
            AuthError::Unreachable { .. } => Self::ServerUnreachable,
            AuthError::UntrustedCertificate { .. } => Self::UntrustedCertificate,
            AuthError::Server { .. } => Self::ServerError,
            AuthError::InvalidResponse { .. } => Self::InvalidServerResponse,
        }
    }
}

impl From<&DrainStop> for ErrorCode {
    fn from(e: &DrainStop) -> Self {
        match e {
            DrainStop::Auth(e) => e.into(),
            DrainStop::Unavailable { .. } => Self::ServerUnavailable,
            DrainStop::Server { .. } => Self::ServerError,
        }
    }
}

impl From<&Reason> for ErrorCode {
    fn from(r: &Reason) -> Self {
        match r {
            Reason::NotAnObject => Self::ContractNotAnObject,
            Reason::RequiredFieldMissing => Self::ContractRequiredFieldMissing,
            Reason::ForbiddenFieldPresent => Self::ContractForbiddenFieldPresent,
            Reason::ValueNotAllowed { .. } => Self::ContractValueNotAllowed,
            Reason::ValueForbidden { .. } => Self::ContractValueForbidden,
            Reason::ValueMismatch { .. } => Self::ContractValueMismatch,
            Reason::LegacyField => Self::ContractLegacyField,
            Reason::Invalid { .. } => Self::ContractInvalid,
            Reason::LegacyEventType { .. } => Self::ContractLegacyEventType,
            Reason::LegacyAggregate { .. } => Self::ContractLegacyAggregate,
            Reason::UnknownEventType { .. } => Self::ContractUnknownEventType,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn credentials_errors() -> Vec<CredentialsError> {
        let path = PathBuf::from("credentials");
        vec![
            CredentialsError::Malformed { path: path.clone() },
            CredentialsError::Incomplete {
                path: path.clone(),
                what: "a token",
            },
            CredentialsError::Io {
                path: path.clone(),
                source: std::io::Error::other("x"),
            },
            CredentialsError::LockTimeout { path },
        ]
    }

    fn auth_errors() -> Vec<AuthError> {
        let server = || "https://example.invalid".to_string();
        let mut all = vec![
            AuthError::NotAuthenticated { server: server() },
            AuthError::OtherServer {
                stored: server(),
                configured: server(),
            },
            AuthError::SessionExpired { server: server() },
            AuthError::InvalidLogin,
            AuthError::Unreachable {
                server: server(),
                detail: String::new(),
            },
            AuthError::UntrustedCertificate {
                server: server(),
                detail: String::new(),
            },
            AuthError::Server {
                server: server(),
                call: "token",
                status: 403,
            },
            AuthError::InvalidResponse {
                server: server(),
                call: "token",
            },
        ];
        all.extend(credentials_errors().into_iter().map(AuthError::Credentials));
        all
    }

    #[test]
    fn mapped_codes_are_the_modules_own() {
        for e in credentials_errors() {
            assert_eq!(ErrorCode::from(&e).as_str(), e.code(), "{e:?}");
        }
        for e in [
            UrlError::Malformed {
                url: "x".into(),
                detail: "y".into(),
            },
            UrlError::Insecure { url: "x".into() },
            UrlError::Unsupported { url: "x".into() },
        ] {
            assert_eq!(ErrorCode::from(&e).as_str(), e.code(), "{e:?}");
        }
        for e in auth_errors() {
            assert_eq!(ErrorCode::from(&e).as_str(), e.code(), "{e:?}");
        }
        let mut stops: Vec<DrainStop> = auth_errors().into_iter().map(DrainStop::Auth).collect();
        stops.push(DrainStop::Unavailable {
            attempts: 3,
            detail: String::new(),
        });
        stops.push(DrainStop::Server {
            status: 500,
            detail: String::new(),
        });
        for e in stops {
            assert_eq!(ErrorCode::from(&e).as_str(), e.code(), "{e:?}");
        }
        let value = || "v".to_string();
        for r in [
            Reason::NotAnObject,
            Reason::RequiredFieldMissing,
            Reason::ForbiddenFieldPresent,
            Reason::ValueNotAllowed {
                value: value(),
                allowed: &[],
            },
            Reason::ValueForbidden { value: value() },
            Reason::ValueMismatch {
                value: value(),
                expected: "e",
            },
            Reason::LegacyField,
            Reason::LegacyEventType { value: value() },
            Reason::LegacyAggregate { value: value() },
            Reason::UnknownEventType { value: value() },
        ] {
            assert_eq!(ErrorCode::from(&r).as_str(), r.code(), "{r:?}");
        }
    }
}
