// The storage emulators the tests start (built by .ci/services.sh into .cache/bin; not part of stashplan).
module stashplan.local/emulators

go 1.26

require (
	github.com/fsouza/fake-gcs-server v1.56.1
	github.com/restic/rest-server v0.14.0
)
