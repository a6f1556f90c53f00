package nodeapi

import (
	"errors"
	"fmt"

	"github.com/containernetworking/cni/pkg/types"
)

// CNI error codes: the standard ones this plugin uses and ecloud's own (≥ 100).
const (
	CodeIncompatibleVersion = types.ErrIncompatibleCNIVersion      // 1
	CodeInvalidEnv          = types.ErrInvalidEnvironmentVariables // 4
	CodeDecoding            = types.ErrDecodingFailure             // 6
	CodeInvalidConfig       = types.ErrInvalidNetworkConfig        // 7
	CodeTryAgainLater       = types.ErrTryAgainLater               // 11
	CodeNotAvailable        = types.ErrPluginNotAvailable          // 50
	CodeInternal            = types.ErrInternal                    // 999

	// CodePoolExhausted: no free IP is left in any pool the pod may use.
	CodePoolExhausted uint = 100
	// CodePoolNotAllowed: the pod's namespace or node may not use the pool it asked for.
	CodePoolNotAllowed uint = 101
	// CodeIPTaken: the specific IP the pod asked for belongs to another pod.
	CodeIPTaken uint = 102
	// CodeUnknownPool: the pod (or its namespace) names a pool that does not exist.
	CodeUnknownPool uint = 103
	// CodeBadAnnotation: an ecloud.io/ annotation on the pod cannot be parsed.
	CodeBadAnnotation uint = 104
)

// Error is a failure with a CNI error code, as the daemon returns it and the plugin prints it.
type Error struct {
	Code    uint   `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details,omitempty"`
}

func (e *Error) Error() string {
	if e.Details == "" {
		return fmt.Sprintf("code %d: %s", e.Code, e.Msg)
	}
	return fmt.Sprintf("code %d: %s; %s", e.Code, e.Msg, e.Details)
}

// Errorf builds an Error.
func Errorf(code uint, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf is err's CNI code (CodeInternal when it carries none).
func CodeOf(err error) uint {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}
