# Multi-stage build of the single wxnotify binary (worker, enqueue, mock,
# demo). The runtime image has no shell and runs as a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/wxnotify ./cmd/wxnotify

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wxnotify /usr/local/bin/wxnotify
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/wxnotify"]
CMD ["worker"]
