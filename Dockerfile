# edgeseg: a static binary on a minimal, non-root image.
#   docker build -t edgeseg .
#   docker run -p 8080:8080 -v $PWD/edgeseg.yaml:/etc/edgeseg/edgeseg.yaml:ro \
#     -v $PWD/templates:/etc/edgeseg/templates:ro edgeseg
#   docker run -p 8080:8080 edgeseg demo   # the bundled demo shop behind it
# Config and templates are mounted (a ConfigMap or a volume); edgeseg reloads
# templates when they change and on SIGHUP.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# docker build --build-arg VERSION=$(git describe --always --dirty) names the
# build in `edgeseg version`, the start-up log line and edgeseg_build_info.
ARG VERSION=""
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/edgeseg ./cmd/edgeseg

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edgeseg /usr/local/bin/edgeseg
COPY examples/edgeseg.yaml /etc/edgeseg/edgeseg.yaml
COPY examples/templates /etc/edgeseg/templates
# The demo shop, for `docker run -p 8080:8080 edgeseg demo`.
COPY examples/site /etc/edgeseg/site
USER nonroot:nonroot
EXPOSE 8080
VOLUME ["/etc/edgeseg"]
ENV EDGESEG_CONFIG=/etc/edgeseg/edgeseg.yaml
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/edgeseg"]
CMD ["serve"]
