package integration

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestSecondBrokerOnSameDirectoryRefused: a second broker pointed at a data
// directory in use exits with an error instead of recovering (and cutting)
// the CommitLog under the first, which keeps serving.
func TestSecondBrokerOnSameDirectoryRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startBroker(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, brokerBin, "--listeners=PLAINTEXT://127.0.0.1:0", "--log.dirs="+dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another process") {
		t.Fatalf("second broker on %s: %v\n%s", dir, err, out)
	}
	adm := newAdmin(t, b)
	createTopic(t, adm, "still-serving", 1, nil)
}
