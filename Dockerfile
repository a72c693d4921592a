# The broker as a minimal image: a static binary on scratch, running as a
# non-root user, data in the /data volume, Kafka's port 9092, configured by
# KAFKA_* environment variables as the official Kafka image is.
#
# Where a registry is reachable:
#   docker build --build-arg GO_IMAGE=golang:1.26 -t rocketkafka/broker .
# Where none is (as on our CI machines), scripts/docker-build.sh makes the
# build stage's base from the machine's Go toolchain and vendors the
# modules into the build context; go build uses vendor/ when it is there.
ARG GO_IMAGE=rocketkafka/go-toolchain:local

FROM ${GO_IMAGE} AS build
# The toolchain image has no shell: exec-form RUN, and WORKDIR makes the
# (empty) data directory.
WORKDIR /tmp
WORKDIR /out/data
WORKDIR /src
COPY . .
ENV CGO_ENABLED=0
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/broker", "./cmd/broker"]

FROM scratch
COPY --from=build /out/broker /broker
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV KAFKA_LISTENERS=PLAINTEXT://:9092 \
    KAFKA_LOG_DIRS=/data
VOLUME /data
EXPOSE 9092
ENTRYPOINT ["/broker"]
