# mabeamd and mabeam in a Debian 12 image (the same Debian packages the
# project builds against). Build: docker build -t mabeam .
# Run one node: docker run -p 127.0.0.1:7700:7700 -e MABEAM_API_TOKEN=... mabeam
FROM debian:bookworm-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake pkg-config git \
       libraft-dev libuv1-dev libnng-dev librocksdb-dev libcunit1-dev libcjson-dev \
       libprotobuf-c-dev protobuf-c-compiler libmbedtls-dev \
    && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DMB_WERROR=OFF \
    && cmake --build /build -j"$(nproc)" --target mabeamd mabeam

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libraft2 libuv1 libnng1 librocksdb7.8 \
       libcjson1 libprotobuf-c1 libmbedtls14 curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /var/lib/mabeam --create-home mabeam
COPY --from=build /build/node/mabeamd /build/node/cli/mabeam /usr/local/bin/
USER mabeam
WORKDIR /var/lib/mabeam
VOLUME /var/lib/mabeam
# Inside a container the API must listen beyond loopback; set an API token.
ENV MABEAM_DATA_DIR=/var/lib/mabeam/data \
    MABEAM_HTTP_ADDRESS=0.0.0.0:7700
EXPOSE 7700 7701 7702
HEALTHCHECK --interval=10s --timeout=2s CMD curl -fs http://127.0.0.1:7700/v1/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["mabeamd"]
