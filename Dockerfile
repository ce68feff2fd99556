# dagctl-bot: a static binary on distroless, non-root. The same image is the jobs' runner image: each Job's init
# container runs /usr/local/bin/dagctl-bot from it (DAGCTL_K8S_RUNNER_IMAGE, DAGCTL_K8S_RUNNER_PATH).
#
#   docker build -t ghcr.io/dagctl/dagctl-bot:dev .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/dagctl-bot ./cmd/dagctl-bot

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dagctl-bot /usr/local/bin/dagctl-bot
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dagctl-bot"]
CMD ["serve"]
