package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestDockerImage builds the image from the Dockerfile (base images made
// locally: no registry is reachable), runs it with the environment the
// official apache/kafka image takes in KRaft mode (a controller listener
// beside the client one) and a named volume, produces and consumes
// through it with franz-go, restarts the container on the same volume and
// reads the data back.
func TestDockerImage(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil || exec.Command("docker", "info").Run() != nil {
		hint := "docker engine not available: install and start it (docker.io) to test the image"
		if os.Getenv("CI") != "" {
			t.Fatal(hint)
		}
		t.Skip(hint)
	}
	t.Parallel()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	docker := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	tag := fmt.Sprintf("rocketkafka/broker:test-%d", os.Getpid())
	build := exec.Command("bash", filepath.Join(root, "scripts", "docker-build.sh"), tag)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", "-f", tag).Run() })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	name := fmt.Sprintf("rocketkafka-test-%d", os.Getpid())
	volume := name + "-data"
	docker("volume", "create", volume)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", "--tail", "40", name).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", name).Run()
		exec.Command("docker", "volume", "rm", "-f", volume).Run()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	docker("run", "-d", "--name", name, "-p", addr+":9092", "-v", volume+":/data",
		"-e", "KAFKA_NODE_ID=1", "-e", "KAFKA_PROCESS_ROLES=broker,controller",
		"-e", "KAFKA_LISTENERS=PLAINTEXT://:9092,CONTROLLER://:9093",
		"-e", "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://"+addr,
		"-e", "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
		"-e", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"-e", "KAFKA_CONTROLLER_QUORUM_VOTERS=1@localhost:9093",
		"-e", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR=1",
		"-e", "KAFKA_COMMITLOG_SEGMENT_BYTES=16777216", "-e", "KAFKA_MESSAGE_MAX_BYTES=1048588",
		tag)

	b := &broker{addr: addr}
	const n = 200
	waitUp := func(what string) {
		t.Helper()
		eventually(t, 60*time.Second, what, func() error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return cl.Ping(ctx)
		})
	}
	waitUp("the container to answer")
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: "docker", Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	produceSync(t, newClient(t, b, kgo.AllowAutoTopicCreation()), recs...)
	check := func() {
		t.Helper()
		got := consumeTopic(t, b, "docker", n)
		for i, r := range got {
			if r.Offset != int64(i) || string(r.Value) != fmt.Sprintf("value-%d", i) {
				t.Fatalf("record %d: offset %d value %q", i, r.Offset, r.Value)
			}
		}
	}
	check()
	// docker stop sends SIGTERM: a clean shutdown, exit 0.
	docker("stop", "-t", "30", name)
	if code := docker("inspect", "-f", "{{.State.ExitCode}}", name); code != "0" {
		t.Fatalf("the container exited with %s after SIGTERM", code)
	}
	docker("start", name)
	waitUp("the restarted container to answer")
	check()
	if user := docker("inspect", "-f", "{{.Config.User}}", name); user == "" || user == "0" || user == "root" {
		t.Fatalf("the image runs as %q, want a non-root user", user)
	}
}
