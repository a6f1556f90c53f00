package commands

import "fmt"

// wrap says what failed.
func wrap(err error, what string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(what, args...), err)
}
