//! The command line: raw flags as clap parses them (`Opts`), and the checked request the program runs on
//! (`Request`). Everything that can be checked before the model loads is checked in `Opts::resolve`.
use crate::report::Format;
use clap::{builder::PossibleValuesParser, Parser, Subcommand};
use classify_image::models::{self, Preset, PresetKind};
use classify_image::{error::Error, sink, weights::hub::Fetch, LabelSource, ModelId};
use std::path::PathBuf;
use tch::Device;

/// Classify an image with an ImageNet-pretrained CNN, print the top 5 classes, and show the image with the
/// top-1 label drawn on it (or write it with --output).
#[derive(Debug, Parser)]
#[command(name = "classify-image", version, subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Input image(s); a directory means every image file under it, recursively
    #[arg(short, long, value_name = "PATH", num_args = 1.., required_unless_present_any = ["video", "camera"])]
    image: Vec<PathBuf>,

    /// Classify the frames of a video file instead
    #[arg(long, value_name = "FILE", conflicts_with_all = ["image", "camera"])]
    video: Option<PathBuf>,

    /// Classify the frames of a camera (its index, 0 for the first) instead
    #[arg(long, value_name = "INDEX", conflicts_with_all = ["image", "video"])]
    camera: Option<i32>,

    /// With --video/--camera: classify every Nth frame (the label stays on the frames between)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    every: u32,

    /// Name of the pre-trained network to use: the seed's vgg16, vgg19, inception, densenet, resnet, or any
    /// model of the zoo (`classify-image weights list`)
    #[arg(short, long, default_value = "vgg16", value_parser = model_names(), hide_possible_values = true)]
    model: String,

    /// Weights file (.pth, .pt or .safetensors) to use instead of the official one, e.g. a fine-tuned state
    /// dict with its own number of classes (give its --labels)
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,

    /// Classify with a TorchScript module (torch.jit.trace/script output) instead of a zoo model; it gets the
    /// seed's input preparation unless --size/--mean/--std say otherwise
    #[arg(long, value_name = "FILE", conflicts_with_all = ["weights", "model"])]
    torchscript: Option<PathBuf>,

    /// How to prepare the image: seed (the original's squash to the model's size) or torchvision (shorter side
    /// to 256, centre crop 224; Inception 342→299, ResNet-50 V2 232→224)
    #[arg(long, value_enum, default_value_t = PresetArg::Seed)]
    preset: PresetArg,

    /// Input size: the image is squashed (or, with --preset torchvision, cropped) to SIZE×SIZE
    /// [default: the model's, 224 for most]
    #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(i64).range(16..=4096))]
    size: Option<i64>,

    /// Per-channel mean subtracted after scaling to [0, 1] [default: the model's, ImageNet's for most]
    #[arg(long, value_name = "R,G,B", value_parser = triple)]
    mean: Option<[f64; 3]>,

    /// Per-channel standard deviation divided by [default: the model's]
    #[arg(long, value_name = "R,G,B", value_parser = triple)]
    std: Option<[f64; 3]>,

    /// Write the annotated image (or video: .mp4, .avi) to FILE, format from its extension, instead of
    /// showing a window
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Write annotated copies of the images into DIR, under their own names (created if missing)
    #[arg(long, value_name = "DIR", conflicts_with = "output")]
    output_dir: Option<PathBuf>,

    /// Also show the annotated images (or video) in a window, e.g. beside --output; q or Esc stops
    #[arg(long)]
    show: bool,

    /// How many predictions to report per image
    #[arg(short = 'k', long, value_name = "K", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    top_k: u32,

    /// Output format on stdout
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Images per forward pass when classifying several
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    batch_size: u32,

    /// Class names, one per line [default: the built-in ImageNet labels]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    device: String,

    /// Run the network in float16 (CUDA only)
    #[arg(long)]
    half: bool,

    #[command(flatten)]
    pub network: NetworkOpts,
}

/// How weights may be fetched; shared by classifying and `weights download`.
#[derive(Debug, clap::Args)]
pub struct NetworkOpts {
    /// Never use the network: missing weights are an error instead of a download (also CLASSIFY_IMAGE_OFFLINE=1)
    #[arg(long, global = true)]
    offline: bool,

    /// No download messages or progress bar on stderr
    #[arg(short, long, global = true)]
    quiet: bool,
}

impl NetworkOpts {
    pub fn fetch(&self) -> Fetch {
        Fetch::new(self.offline, self.quiet)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage weights files: list the models, download ahead of time, verify the cache
    #[command(subcommand)]
    Weights(WeightsCommand),
    /// Show what libtorch sees: CUDA support in this build, GPUs
    Devices,
}

#[derive(Debug, Subcommand)]
pub enum WeightsCommand {
    /// List every model with its weights file, size, published accuracy, and where the file is
    List,
    /// Download the official weights of MODELs (or of all models) into torchvision's cache
    Download {
        /// Every model that has a download URL
        #[arg(long, conflicts_with = "models")]
        all: bool,
        #[arg(value_parser = model_names(), hide_possible_values = true, required_unless_present = "all")]
        models: Vec<String>,
    },
    /// Check the SHA-256 of the weights files present (of MODELs, or of every model)
    Verify {
        #[arg(value_parser = model_names(), hide_possible_values = true)]
        models: Vec<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PresetArg {
    Seed,
    Torchvision,
}

fn triple(arg: &str) -> Result<[f64; 3], String> {
    let values: Vec<f64> =
        arg.split(',').map(|v| v.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match values.as_slice() {
        [r, g, b] if values.iter().all(|v| v.is_finite()) => Ok([*r, *g, *b]),
        _ => Err("give three comma-separated numbers, e.g. 0.485,0.456,0.406".into()),
    }
}

fn model_names() -> PossibleValuesParser {
    PossibleValuesParser::new(models::names())
}

/// A model name that clap has checked against the registry.
pub fn model_id(name: &str) -> ModelId {
    ModelId::from_name(name).expect("clap accepted only registry names")
}

/// Where annotated images go.
#[derive(Debug, Clone, PartialEq)]
pub enum Sink {
    /// Nowhere: only the report on stdout.
    None,
    /// One file, for one image or a video.
    File(PathBuf),
    /// Copies under their own names in a folder.
    Dir(PathBuf),
}

/// What to classify.
#[derive(Debug)]
pub enum Source {
    Images(Vec<PathBuf>),
    Video(PathBuf),
    Camera(i32),
}

/// What classifies: a zoo model (with its official weights, or a file of weights for it), or a TorchScript
/// module that carries its own architecture.
#[derive(Debug)]
pub enum Model {
    Zoo { id: ModelId, weights: Option<PathBuf> },
    TorchScript(PathBuf),
}

/// A checked request.
#[derive(Debug)]
pub struct Request {
    pub source: Source,
    pub model: Model,
    /// The model's name as the user gave it (the seed prints it), or the TorchScript file's name.
    pub model_name: String,
    pub preset: Preset,
    pub labels: LabelSource,
    pub device: Device,
    /// Float, or Half with --half.
    pub kind: tch::Kind,
    pub sink: Sink,
    /// Show a window too (checked: a display is there).
    pub window: bool,
    pub top_k: usize,
    pub format: Format,
    pub batch_size: usize,
    pub every: u32,
    pub fetch: Fetch,
}

impl Request {
    /// The seed's exact behaviour: one image file, text, and its [INFO] narration.
    pub fn seed_mode(&self) -> bool {
        matches!(&self.source, Source::Images(paths) if paths.len() == 1 && !paths[0].is_dir())
            && self.format == Format::Text
    }
}

impl Opts {
    pub fn resolve(self) -> Result<Request, Error> {
        let device = parse_device(&self.device)?;
        if self.half && !device.is_cuda() {
            return Err(Error::Usage(format!(
                "--half needs a CUDA device, and this run is on {device:?}; drop --half or use --device cuda"
            )));
        }
        let source = match (self.video, self.camera) {
            (Some(video), _) => Source::Video(video),
            (None, Some(index)) => Source::Camera(index),
            (None, None) => Source::Images(self.image),
        };
        let one_image = matches!(&source, Source::Images(p) if p.len() == 1 && !p[0].is_dir());
        let inputs: Vec<&std::path::Path> = match &source {
            Source::Images(paths) => paths.iter().map(PathBuf::as_path).collect(),
            Source::Video(path) => vec![path.as_path()],
            Source::Camera(_) => vec![],
        };
        let sink = match (self.output, self.output_dir) {
            (Some(path), _) => {
                if !(one_image || matches!(source, Source::Video(_) | Source::Camera(_))) {
                    return Err(Error::Usage("--output takes one image; for several, use --output-dir DIR".into()));
                }
                sink::check_output(&path, &inputs, matches!(source, Source::Images(_)))?;
                Sink::File(path)
            }
            (None, Some(dir)) => {
                if !matches!(source, Source::Images(_)) {
                    return Err(Error::Usage("--output-dir is for images; a video goes to --output FILE".into()));
                }
                Sink::Dir(dir)
            }
            (None, None) => Sink::None,
        };
        // The seed's default: one image (or a video) with nowhere to write it goes to a window.
        let default_window =
            sink == Sink::None && self.format == Format::Text && (one_image || !matches!(source, Source::Images(_)));
        let window = self.show || default_window;
        if window {
            sink::check_display()?;
        }
        if self.std.is_some_and(|s| s.contains(&0.0)) {
            return Err(Error::Usage("--std: a standard deviation of 0 would divide by zero".into()));
        }
        let kind = match self.preset {
            PresetArg::Seed => PresetKind::Seed,
            PresetArg::Torchvision => PresetKind::Torchvision,
        };
        let (model, model_name, base) = match self.torchscript {
            Some(path) => {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
                let base = match kind {
                    PresetKind::Seed => models::SEED,
                    PresetKind::Torchvision => Preset { resize: Some(256), ..models::SEED },
                };
                (Model::TorchScript(path), name, base)
            }
            None => {
                let id = model_id(&self.model);
                (Model::Zoo { id, weights: self.weights }, self.model, id.spec().preset(kind))
            }
        };
        // --size sets the crop; torchvision's resize keeps its ratio to the crop (256/224).
        let size = self.size.unwrap_or(base.size);
        let preset = Preset {
            size,
            resize: base.resize.map(|r| r * size / base.size),
            mean: self.mean.unwrap_or(base.mean),
            std: self.std.unwrap_or(base.std),
        };
        Ok(Request {
            source,
            model,
            model_name,
            preset,
            labels: self.labels.map_or(LabelSource::ImageNet, LabelSource::File),
            device,
            kind: if self.half { tch::Kind::Half } else { tch::Kind::Float },
            sink,
            window,
            top_k: self.top_k as usize,
            format: self.format,
            batch_size: self.batch_size as usize,
            every: self.every,
            fetch: self.network.fetch(),
        })
    }
}

fn parse_device(arg: &str) -> Result<Device, Error> {
    let cuda_count = || tch::Cuda::device_count();
    let device = match arg {
        "auto" => return Ok(classify_image::config::default_device()),
        "cpu" => return Ok(Device::Cpu),
        "cuda" => Device::Cuda(0),
        other => match other.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Device::Cuda(n),
            None => return Err(Error::Usage(format!("unknown device '{other}'; use auto, cpu, cuda or cuda:N"))),
        },
    };
    let Device::Cuda(n) = device else { unreachable!("only CUDA devices reach here") };
    if (n as i64) < cuda_count() {
        Ok(device)
    } else {
        Err(Error::Usage(format!(
            "--device {arg}: libtorch sees {} CUDA device(s) (no GPU, no driver, or a CPU-only build); use --device cpu",
            cuda_count()
        )))
    }
}
