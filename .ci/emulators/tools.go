//go:build tools

// Package tools pins the emulator commands that .ci/services.sh builds.
package tools

import (
	_ "github.com/fsouza/fake-gcs-server"
	_ "github.com/restic/rest-server/cmd/rest-server"
)
