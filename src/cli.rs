//! The command line: raw flags as clap parses them (`Opts`), and the checked request the program runs on
//! (`Request`). Everything that can be checked before the model loads is checked in `Opts::resolve`.
use clap::{builder::PossibleValuesParser, Parser, Subcommand};
use classify_image::{error::Error, models, models::Preset, sink, weights::hub::Fetch, LabelSource, ModelId};
use std::path::PathBuf;
use tch::Device;

/// Classify an image with an ImageNet-pretrained CNN, print the top 5 classes, and show the image with the
/// top-1 label drawn on it (or write it with --output).
#[derive(Debug, Parser)]
#[command(name = "classify-image", version, subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Path to the input image
    #[arg(short, long, value_name = "PATH", required = true)]
    image: Option<PathBuf>,

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

    /// Input size: the image is squashed to SIZE×SIZE [default: the model's, 224 for most]
    #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(i64).range(16..=4096))]
    size: Option<i64>,

    /// Per-channel mean subtracted after scaling to [0, 1] [default: the model's, ImageNet's for most]
    #[arg(long, value_name = "R,G,B", value_parser = triple)]
    mean: Option<[f64; 3]>,

    /// Per-channel standard deviation divided by [default: the model's]
    #[arg(long, value_name = "R,G,B", value_parser = triple)]
    std: Option<[f64; 3]>,

    /// Write the annotated image to FILE (format from its extension) instead of showing a window
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Class names, one per line [default: the built-in ImageNet labels]
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,

    /// Where to run: auto (CUDA if available, else CPU), cpu, cuda or cuda:N
    #[arg(long, default_value = "auto", value_name = "DEVICE")]
    device: String,

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

/// Where the annotated image goes.
#[derive(Debug)]
pub enum Sink {
    Window,
    File(PathBuf),
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
    pub image: PathBuf,
    pub model: Model,
    /// The model's name as the user gave it (the seed prints it), or the TorchScript file's name.
    pub model_name: String,
    pub preset: Preset,
    pub labels: LabelSource,
    pub device: Device,
    pub sink: Sink,
    pub fetch: Fetch,
}

impl Opts {
    pub fn resolve(self) -> Result<Request, Error> {
        let image = self.image.expect("clap requires --image without a subcommand");
        let device = parse_device(&self.device)?;
        let sink = match self.output {
            Some(path) => {
                sink::check_output(&path, &[&image])?;
                Sink::File(path)
            }
            None => {
                sink::check_display()?;
                Sink::Window
            }
        };
        if self.std.is_some_and(|s| s.contains(&0.0)) {
            return Err(Error::Usage("--std: a standard deviation of 0 would divide by zero".into()));
        }
        let (model, model_name, base) = match self.torchscript {
            Some(path) => {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into());
                (Model::TorchScript(path), name, models::SEED)
            }
            None => {
                let id = model_id(&self.model);
                (Model::Zoo { id, weights: self.weights }, self.model, id.spec().preset)
            }
        };
        let preset = Preset {
            size: self.size.unwrap_or(base.size),
            mean: self.mean.unwrap_or(base.mean),
            std: self.std.unwrap_or(base.std),
        };
        Ok(Request {
            image,
            model,
            model_name,
            preset,
            labels: self.labels.map_or(LabelSource::ImageNet, LabelSource::File),
            device,
            sink,
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
