# warren consumer host (warrend) and CLI (warren) on Debian 12.
#   docker build -t warren .
#   docker run --rm -e WARREN_URL=amqp://user:pass@broker:5672/ warren
# The image runs `warrend -c /etc/warren/warren.conf` as the user `warren`;
# mount another config there to change it. Modules live in
# /usr/local/lib/warren (a bare module name in the config is found there).

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake gcc make pkg-config libc6-dev \
      librabbitmq-dev libjansson-dev libconfig-dev libssl-dev \
      libmicrohttpd-dev libsqlite3-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN rm -rf build build-* \
 && cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_INSTALL_PREFIX=/usr/local -DWARREN_BUILD_TESTS=OFF \
 && cmake --build build -j"$(nproc)" \
 && DESTDIR=/out cmake --install build \
 && rm -rf /out/usr/local/include /out/usr/local/lib/pkgconfig /out/usr/local/lib/*.a

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librabbitmq4 libjansson4 libconfig9 libssl3 libmicrohttpd12 libsqlite3-0 libcurl4 \
      ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/warren --create-home --shell /usr/sbin/nologin warren \
 && install -d -o warren -g warren /var/spool/warren /etc/warren /var/lib/warren/history
COPY --from=build /out/usr/local/ /usr/local/
COPY config/docker.conf /etc/warren/warren.conf
RUN ldconfig
USER warren
WORKDIR /var/lib/warren
ENTRYPOINT ["warrend", "-c", "/etc/warren/warren.conf"]
